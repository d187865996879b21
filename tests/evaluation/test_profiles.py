"""Settings profiles: named overrides a run is made with (`--profile`, the page's run form), what
the real pipeline then does differently (the scripted model server records each request), the
profile kept in the run's configuration, and two runs with different profiles side by side."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.management.base import CommandError

from assistant.evaluation import profiles
from assistant.evaluation.models import EvaluationProfile, EvaluationRun
from assistant.evaluation.profiles import ProfileInvalid
from tests.chat.scripted_llm import SOURCE_HEADER, Say
from tests.evaluation.conftest import evaluate, make_case

GOOD = "Train travel is first class from 2024 {cite:Travel policy 2024}."


@pytest.fixture
def lead(db) -> User:
    return User.objects.create_user("lead", password="lead-pass-123", is_staff=True)


def _sources_shown(request: dict) -> list[str]:
    """The titles of the passages the model was given in one request."""
    return [title for m in request["messages"] for _n, title in SOURCE_HEADER.findall(str(m.get("content") or ""))]


def test_a_profile_changes_the_model_its_parameters_and_the_passages_and_is_kept_with_the_run(knowledge, scripted):
    model = scripted([Say(GOOD)])
    make_case()
    profiles.profile_create(name="small context", values={
        "LLM_MODEL": "bigger-model", "LLM_TEMPERATURE": "0.7", "LLM_MAX_TOKENS": "99", "RAG_TOP_K": "1"})
    evaluate("--label", "as configured")
    plain = model.requests[0]
    model.replay([Say(GOOD)])
    evaluate("--profile", "small context", "--label", "profiled")
    profiled = model.requests[0]
    assert plain["model"] == "scripted" and profiled["model"] == "bigger-model"
    assert profiled["temperature"] == 0.7 and profiled["max_tokens"] == 99 and plain["temperature"] == 0.2
    assert len(_sources_shown(plain)) == 2 and _sources_shown(profiled) == ["Travel policy 2024"]
    before, after = EvaluationRun.objects.order_by("created_at")
    assert before.profile is None and before.config["profile"] is None
    assert after.profile.name == "small context" and after.config["profile"] == {
        "name": "small context",
        "settings": {"LLM_MODEL": "bigger-model", "LLM_TEMPERATURE": 0.7, "LLM_MAX_TOKENS": 99, "RAG_TOP_K": 1}}
    assert after.config["model"] == "bigger-model" and after.config["search"]["top_k"] == 1
    assert after.config["temperature"] == 0.7 and before.config["search"]["top_k"] == 5


def test_set_wins_over_the_profile_and_an_unknown_profile_is_refused(knowledge, scripted):
    model = scripted([Say(GOOD)])
    make_case()
    profiles.profile_create(name="one passage", values={"RAG_TOP_K": 1, "LLM_MAX_TOKENS": 50})
    evaluate("--profile", "one passage", "--set", "RAG_TOP_K=2")
    assert len(_sources_shown(model.requests[0])) == 2 and model.requests[0]["max_tokens"] == 50
    assert EvaluationRun.objects.get().overrides == {"RAG_TOP_K": 2, "LLM_MAX_TOKENS": 50}
    with pytest.raises(CommandError, match="No settings profile named 'nope'"):
        evaluate("--profile", "nope")
    assert EvaluationRun.objects.count() == 1


@pytest.mark.parametrize(("values", "named"), [
    ({"RAG_TOP_K": "0"}, "RAG_TOP_K"), ({"RAG_TOP_K": "many"}, "RAG_TOP_K"), ({"LLM_TEMPERATURE": "nan"}, "LLM_TEMPERATURE"),
    ({"RAG_SEARCH_MODE": "psychic"}, "RAG_SEARCH_MODE"), ({"LLM_BASE_URL": "http://evil.example/v1"}, "LLM_BASE_URL"),
    ({"CHUNK_TOKENS": "100"}, "CHUNK_TOKENS"), ({"RAG_TOP_K": 2.5}, "RAG_TOP_K"),
])
def test_a_profile_takes_only_the_answer_time_settings_within_their_bounds(db, values, named):
    with pytest.raises(ProfileInvalid, match=named):
        profiles.profile_create(name="bad", values=values)
    assert not EvaluationProfile.objects.exists()


def test_staff_make_edit_and_delete_profiles_on_the_page(client, lead):
    client.force_login(lead)
    page = client.get("/evaluation/profiles/").content.decode()
    assert 'name="RAG_RRF_K"' in page and 'name="LLM_MODEL"' in page and "CHUNK_TOKENS" not in page
    response = client.post("/evaluation/profiles/", {"name": "wide", "RAG_CANDIDATES": "200", "RAG_RRF_K": "20",
                                                     "RAG_FUSION": "rrf", "LLM_MODEL": ""})
    assert response.status_code == 302
    profile = EvaluationProfile.objects.get()
    assert profile.values == {"RAG_CANDIDATES": 200, "RAG_RRF_K": 20, "RAG_FUSION": "rrf"}
    refused = client.post("/evaluation/profiles/", {"name": "wide", "RAG_TOP_K": "3"})
    assert refused.status_code == 400 and "Another profile is named" in refused.content.decode()
    refused = client.post(f"/evaluation/profiles/{profile.id}/", {"name": "wide", "RAG_DENSE_WEIGHT": "-1"})
    assert refused.status_code == 400 and "RAG_DENSE_WEIGHT must be between" in refused.content.decode()
    profile.refresh_from_db()
    assert profile.values["RAG_CANDIDATES"] == 200 and "RAG_DENSE_WEIGHT" not in profile.values
    client.post(f"/evaluation/profiles/{profile.id}/", {"name": "wider", "RAG_CANDIDATES": "300"})
    profile.refresh_from_db()
    assert profile.name == "wider" and profile.values == {"RAG_CANDIDATES": 300}
    client.post(f"/evaluation/profiles/{profile.id}/delete/")
    assert not EvaluationProfile.objects.exists()


def test_two_runs_started_on_the_page_with_two_profiles_compare_side_by_side(
        client, lead, knowledge, scripted, django_capture_on_commit_callbacks):
    model = scripted([Say(GOOD)])
    make_case(must_contain=["first class"])
    one = profiles.profile_create(name="one passage", values={"RAG_TOP_K": 1})
    five = profiles.profile_create(name="five passages", values={"RAG_TOP_K": 5, "LLM_MODEL": "other-model"})
    client.force_login(lead)
    for profile in (one, five):
        model.replay([Say(GOOD)])
        with django_capture_on_commit_callbacks(execute=True):
            client.post("/evaluation/runs/start/", {"profile": str(profile.id), "label": profile.name})
    first, second = EvaluationRun.objects.order_by("created_at")
    assert (first.profile, second.profile) == (one, five) and first.status == second.status == "succeeded"
    assert model.requests[0]["model"] == "other-model"
    profiles.profile_update(profile=one, name="one passage", values={"RAG_TOP_K": 3})  # later edits...
    first.refresh_from_db()
    assert first.config["profile"]["settings"] == {"RAG_TOP_K": 1}  # ...do not rewrite what a run ran with
    dashboard = client.get("/evaluation/").content.decode()
    assert "profile one passage" in dashboard and f'value="{five.id}"' in dashboard
    compared = client.get(f"/evaluation/compare/?a={first.id}&b={second.id}").content.decode()
    assert "Settings profile: one passage → five passages." in compared
    assert 'data-setting="search.top_k"' in compared and 'data-setting="model"' in compared
    assert "Canteen" in compared  # the second run's answer saw the canteen page too: its sources differ
    detail = client.get(f"/evaluation/runs/{first.id}/").content.decode()
    assert "RAG_TOP_K=1" in detail


def test_a_page_run_with_a_profile_that_does_not_exist_is_refused(client, lead, knowledge):
    make_case()
    client.force_login(lead)
    response = client.post("/evaluation/runs/start/", {"profile": "7d0b5a3e-0000-4000-8000-000000000000"},
                           follow=True)
    assert "Check the run" in response.content.decode() and not EvaluationRun.objects.exists()


def test_the_profiles_page_speaks_french(client, lead):
    client.force_login(lead)
    html = client.get("/evaluation/profiles/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Profils de réglages" in html and "Enregistrer le profil" in html
