"""A database connector's settings: connection, and its datasets (table or checked SELECT, ids,
templates, cursor, metadata, ACL)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, field_validator, model_validator

from connectors.sources.base import SourceConfig
from connectors.sources.db_guard import check_host_syntax
from connectors.sources.sql_policy import SqlRefused, check_select, to_sql
from connectors.sources.database.sql import (
    DATASET_NAME,
    RESERVED_METADATA,
    _check_identifier,
    quote_mysql_identifier,
    template_fields,
)


#: The uses of a column that put its values in documents (a denied column may have none of them).
SHOWN_ROLES = frozenset({"title template", "text template", "text column", "metadata column"})


class Dataset(BaseModel):
    """One table/view or SELECT whose rows become documents."""

    model_config = ConfigDict(extra="forbid")

    name: str
    table: str | None = None
    query: str | None = None
    id_columns: list[str] = Field(min_length=1)
    updated_at_column: str | None = None
    title_template: str | None = None
    #: None: "name: value" lines of the text columns (of every column when there are none), NULL,
    #: binary and denied columns left out.
    text_template: str | None = None
    text_columns: list[str] = []
    metadata_columns: list[str] = []
    acl: Literal["connector", "public", "groups", "column"] = "connector"
    acl_groups: list[str] = []
    acl_column: str | None = None
    #: Columns never shown to the assistant (PII): left out of what SQL questions may query and of
    #: the documents' text; no template or metadata column may use one.
    denied_columns: list[str] = []
    #: What the dataset holds, for the model choosing what to query.
    description: str = Field("", max_length=500)
    #: The query as sent: the checked syntax tree written out again (sql_policy.to_sql).
    _runnable: str | None = PrivateAttr(default=None)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not DATASET_NAME.fullmatch(value):
            raise ValueError(
                "must be 1-64 letters, digits, _, . or - (it is part of every document's id), like customers"
            )
        return value

    @field_validator("table")
    @classmethod
    def _table(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        parts = value.split(".")
        if len(parts) > 2:
            raise ValueError("use table or schema.table (a name with dots needs a query dataset)")
        for part in parts:
            _check_identifier(part, "table name")
        return value

    @field_validator("id_columns", "metadata_columns", "denied_columns", "text_columns")
    @classmethod
    def _columns(cls, value: list[str]) -> list[str]:
        for name in value:
            _check_identifier(name, "column name")
        if len(set(value)) != len(value):
            raise ValueError("lists a column twice")
        return value

    @field_validator("updated_at_column", "acl_column")
    @classmethod
    def _column(cls, value: str | None) -> str | None:
        return None if value is None else _check_identifier(value, "column name")

    @field_validator("title_template", "text_template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        template_fields(value)
        return value

    @field_validator("acl_groups")
    @classmethod
    def _groups(cls, value: list[str]) -> list[str]:
        groups = [group.strip() for group in value if group and group.strip()]
        return sorted(set(groups))

    @model_validator(mode="after")
    def _consistent(self) -> Dataset:
        if (self.table is None) == (self.query is None):
            raise ValueError(f"dataset {self.name}: set exactly one of table or query")
        if self.acl == "groups" and not self.acl_groups:
            raise ValueError(f"dataset {self.name}: acl 'groups' needs acl_groups")
        if self.acl != "groups" and self.acl_groups:
            raise ValueError(f"dataset {self.name}: acl_groups is only used with acl 'groups'")
        if self.acl == "column" and not self.acl_column:
            raise ValueError(f"dataset {self.name}: acl 'column' needs acl_column")
        if self.acl != "column" and self.acl_column:
            raise ValueError(f"dataset {self.name}: acl_column is only used with acl 'column'")
        if self.text_template and self.text_columns:
            raise ValueError(f"dataset {self.name}: use text_columns or text_template, not both")
        self._check_denied()
        clash = RESERVED_METADATA.intersection(self.metadata_columns)
        if clash:
            raise ValueError(
                f"dataset {self.name}: metadata column {sorted(clash)[0]} clashes with a built-in metadata key; "
                "rename it with AS in a query dataset"
            )
        return self

    def _check_denied(self) -> None:
        """A denied column must not reach the documents through a template or a column list."""
        denied = {c.lower() for c in self.denied_columns}
        for column, role in self.referenced_columns():
            if column.lower() in denied and role in SHOWN_ROLES:
                raise ValueError(
                    f"dataset {self.name}: the {role} uses column {column}, which is in denied_columns; "
                    "take it out of one or the other"
                )

    # --- helpers ---
    @property
    def table_parts(self) -> tuple[str, ...]:
        return tuple(self.table.split(".")) if self.table else ()

    def what(self) -> str:
        return f"table {self.table}" if self.table else f"the query of dataset {self.name}"

    def referenced_columns(self) -> list[tuple[str, str]]:
        """(column, what uses it), in a stable order."""
        refs = [(c, "id column") for c in self.id_columns]
        if self.updated_at_column:
            refs.append((self.updated_at_column, "updated-at column"))
        if self.title_template:
            refs += [(c, "title template") for c in template_fields(self.title_template)]
        if self.text_template:
            refs += [(c, "text template") for c in template_fields(self.text_template)]
        refs += [(c, "text column") for c in self.text_columns]
        refs += [(c, "metadata column") for c in self.metadata_columns]
        if self.acl_column:
            refs.append((self.acl_column, "ACL column"))
        return refs


class DatabaseConfig(SourceConfig):
    """Connection settings shared by the database kinds."""

    host: str
    port: int = Field(ge=1, le=65535)
    database: str
    user: str
    password: SecretStr = SecretStr("")
    connect_timeout_s: int = Field(10, ge=1, le=300)
    statement_timeout_s: int = Field(30, ge=1, le=3600)
    max_rows_per_dataset: int = Field(100_000, ge=1, le=10_000_000)
    datasets: list[Dataset] = Field(min_length=1)
    #: "Allow questions in SQL": the assistant may query the datasets (governed, read-only).
    sql_questions: bool = Field(
        False,
        title="Allow questions in SQL",
        description="Assistants given the database tools may query these datasets in SQL, as each user: only "
        "the rows and columns that user may see (list PII columns in a dataset's denied_columns), read-only, "
        "under a timeout. Every query is audited.",
    )

    #: Which dialect's rules check names and queries (set by each kind's Config).
    mysql_rules: ClassVar[bool] = False

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return check_host_syntax(value)  # a TargetRefused is a ValueError: shown next to the field

    @field_validator("database", "user")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_identifier(value.strip(), "name")

    @field_validator("datasets")
    @classmethod
    def _datasets(cls, datasets: list[Dataset]) -> list[Dataset]:
        """Checked here rather than on the whole config, so a form shows the problem next to
        the datasets field."""
        names = [ds.name for ds in datasets]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"dataset names must be unique: {', '.join(duplicates)} is used twice")
        for ds in datasets:
            if ds.query is not None:
                dialect = "mysql" if cls.mysql_rules else "postgres"
                try:
                    ds._runnable = to_sql(check_select(ds.query, dialect), dialect)
                except SqlRefused as exc:
                    raise ValueError(f"dataset {ds.name}: the query {exc}") from None
                ds.query = ds.query.strip()
            if cls.mysql_rules:
                try:
                    if ds.table:
                        quote_mysql_identifier(ds.table, qualified=True)
                    for column in ds.id_columns + [c for c in [ds.updated_at_column] if c]:
                        quote_mysql_identifier(column)
                except ValueError as exc:
                    raise ValueError(f"dataset {ds.name}: {exc}") from None
        return datasets
