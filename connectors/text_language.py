"""A text's language: which PostgreSQL text search configuration indexes a document and parses a
question, and whether the embedding model understands the question.

Detection is lingua's (lingua-language-detector: its n-gram models ship inside the wheel, nothing
is downloaded), among RAG_DETECT_LANGUAGES only: fewer candidates make fewer confusions and load
fewer models. A text it cannot place with confidence (a few words, a code listing, a mix) gets
the first RAG_FULLTEXT_LANGUAGES configuration, which is what every document got before detection.

Languages are named by their PostgreSQL configuration ("french"); EMBEDDING_LANGUAGES names
ISO 639-1 codes ("fr"), as model cards do.
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings

# PostgreSQL's Snowball configurations that lingua can also detect -> ISO 639-1.
LANGUAGE_CODES = {
    "arabic": "ar", "armenian": "hy", "basque": "eu", "catalan": "ca", "danish": "da", "dutch": "nl",
    "english": "en", "finnish": "fi", "french": "fr", "german": "de", "greek": "el", "hindi": "hi",
    "hungarian": "hu", "indonesian": "id", "irish": "ga", "italian": "it", "lithuanian": "lt",
    "norwegian": "nb", "portuguese": "pt", "romanian": "ro", "russian": "ru", "serbian": "sr",
    "spanish": "es", "swedish": "sv", "tamil": "ta", "turkish": "tr",
}
# Enough text to tell a language apart, short enough to cost a few milliseconds per document.
DOCUMENT_SAMPLE_CHARS = 4000
# lingua's confidence values over the candidate languages add up to 1. Below this the text is
# not placed (a code listing, a bare command, a mixed sentence): the default configuration.
MIN_CONFIDENCE = 0.5


def detect_languages_setting(value: str) -> list[str]:
    """RAG_DETECT_LANGUAGES: comma-separated configuration names, each one lingua can detect; "none": off."""
    if value.strip().lower() == "none":
        return []
    names = [item.strip().lower() for item in value.split(",") if item.strip()]
    unknown = [name for name in names if name not in LANGUAGE_CODES]
    if unknown:
        raise ValueError(f"names unknown languages {', '.join(unknown)}; known: {', '.join(sorted(LANGUAGE_CODES))}")
    return list(dict.fromkeys(names))


def embedding_languages_setting(value: str) -> frozenset[str]:
    """EMBEDDING_LANGUAGES: ISO 639-1 codes the embedding model was trained on, or * for any."""
    codes = {item.strip().lower() for item in value.split(",") if item.strip()}
    if not codes:
        raise ValueError("must name at least one ISO 639-1 code (e.g. en) or *")
    known = set(LANGUAGE_CODES.values()) | {"*"}
    if codes - known:
        raise ValueError(f"names unknown codes {', '.join(sorted(codes - known))}; known: {', '.join(sorted(known))}")
    return frozenset(codes)


def default_configuration() -> str:
    """What a text that cannot be placed is indexed with: the first configured full-text language."""
    return settings.RAG_FULLTEXT_LANGUAGES[0] if settings.RAG_FULLTEXT_LANGUAGES else "simple"


@lru_cache(maxsize=4)
def _detector(languages: tuple[str, ...]):
    """lingua's detector over these configurations, and its Language -> configuration map.
    Models load on first use, per language; built once per process and set of languages."""
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    by_language = {
        Language.from_iso_code_639_1(getattr(IsoCode639_1, LANGUAGE_CODES[name].upper())): name for name in languages
    }
    return LanguageDetectorBuilder.from_languages(*by_language).build(), by_language


def detected_configuration(text: str) -> str | None:
    """The configuration of the language `text` is written in, among RAG_DETECT_LANGUAGES; None
    when detection is off (fewer than two languages to choose from) or not confident."""
    languages = tuple(settings.RAG_DETECT_LANGUAGES)
    if len(languages) < 2 or not text.strip():
        return None
    detector, by_language = _detector(languages)
    values = detector.compute_language_confidence_values(text)
    if not values or values[0].value < MIN_CONFIDENCE:
        return None
    return by_language.get(values[0].language)


def document_configuration(*, title: str, text: str) -> str:
    """The configuration a document is indexed with (Document.language): its detected language,
    read from its title and the start of its text, else the default."""
    sample = f"{title}\n{text[:DOCUMENT_SAMPLE_CHARS]}"
    return detected_configuration(sample) or default_configuration()


@lru_cache(maxsize=2048)
def _question_configuration(text: str, languages: tuple[str, ...]) -> str | None:
    # Keyed on the candidate languages too, so a changed setting is not answered from the cache.
    return detected_configuration(text)


def question_configuration(text: str) -> str | None:
    """The question's detected configuration (cached: the full-text side and the fusion both ask)."""
    return _question_configuration(text, tuple(settings.RAG_DETECT_LANGUAGES))


def question_configurations(text: str) -> list[str]:
    """The configurations a question is parsed with: its own language's, then RAG_FULLTEXT_LANGUAGES."""
    detected = question_configuration(text)
    return list(dict.fromkeys([*([detected] if detected else []), *settings.RAG_FULLTEXT_LANGUAGES]))


def embedding_covers(text: str) -> bool:
    """Whether the embedding model understands the question's language (EMBEDDING_LANGUAGES).
    A question whose language is not detected with confidence is given the benefit of the doubt."""
    covered = settings.EMBEDDING_LANGUAGES
    if "*" in covered:
        return True
    detected = question_configuration(text)
    return detected is None or LANGUAGE_CODES[detected] in covered
