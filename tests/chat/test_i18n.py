"""English, French, German, Spanish and Italian interface: the language comes from the browser, the switcher remembers
a choice."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.urls import reverse

from assistant.chat.models import Conversation

FRENCH_LOGIN = "Connectez-vous pour continuer"
FRENCH_CHAT = "Comment puis-je vous aider aujourd’hui ?"
ENGLISH_CHAT = "How can I help you today?"


def test_the_login_page_speaks_french_to_a_french_browser(client):
    body = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9,en;q=0.5").content.decode()
    assert FRENCH_LOGIN in body
    assert '<html lang="fr">' in body
    assert "Mot de passe" in body


def test_the_chat_page_speaks_french_to_a_french_browser(client, owner):
    client.force_login(owner)
    body = client.get(reverse("chat:home"), HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert FRENCH_CHAT in body
    assert "Nouvelle discussion" in body
    # the strings the scripts show (errors, toasts) come translated in data attributes
    assert 'data-network="Impossible de joindre le serveur. Vérifiez votre connexion et réessayez."' in body


# (Accept-Language, chat greeting, "New chat", the network error the scripts show, sign-in title, "Username")
EUROPEAN = {
    "de": (
        "de-DE,de;q=0.9,en;q=0.5",
        "Wie kann ich Ihnen heute helfen?",
        "Neuer Chat",
        "Der Server ist nicht erreichbar. Prüfen Sie Ihre Verbindung und versuchen Sie es erneut.",
        "Melden Sie sich an, um fortzufahren",
        "Benutzername",
    ),
    "es": (
        "es-ES,es;q=0.9",
        "¿Cómo puedo ayudarle hoy?",
        "Nuevo chat",
        "No se pudo contactar con el servidor. Compruebe su conexión y vuelva a intentarlo.",
        "Inicie sesión para continuar",
        "Nombre de usuario",
    ),
    "it": (
        "it-IT,it;q=0.9,en;q=0.8",
        "Come posso aiutarLa oggi?",
        "Nuova chat",
        "Impossibile raggiungere il server. Verifichi la connessione e riprovi.",
        "Acceda per continuare",
        "Nome utente",
    ),
}


@pytest.mark.parametrize("language", sorted(EUROPEAN))
def test_the_chat_page_speaks_the_browsers_european_language(client, owner, language):
    accept, greeting, new_chat, network, _, _ = EUROPEAN[language]
    client.force_login(owner)
    body = client.get(reverse("chat:home"), HTTP_ACCEPT_LANGUAGE=accept).content.decode()
    assert f'<html lang="{language}">' in body
    assert greeting in body and new_chat in body
    assert f'data-network="{network}"' in body  # the scripts' strings too
    assert ENGLISH_CHAT not in body
    assert f'data-language="{language}" aria-pressed="true"' in body


@pytest.mark.parametrize("language", sorted(EUROPEAN))
def test_the_login_page_speaks_the_browsers_european_language(client, language):
    accept, _, _, _, sign_in, username = EUROPEAN[language]
    body = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE=accept).content.decode()
    assert f'<html lang="{language}">' in body and sign_in in body and username in body


def test_a_regional_variant_gets_its_language(client, owner):
    client.force_login(owner)
    body = client.get(reverse("chat:home"), HTTP_ACCEPT_LANGUAGE="de-CH").content.decode()
    assert '<html lang="de">' in body and "Wie kann ich Ihnen heute helfen?" in body


def test_it_falls_back_to_english_for_other_languages(client, owner):
    client.force_login(owner)
    body = client.get(reverse("chat:home"), HTTP_ACCEPT_LANGUAGE="pt-BR,pt;q=0.9,ja;q=0.5").content.decode()
    assert ENGLISH_CHAT in body and '<html lang="en">' in body


def test_the_first_offered_language_the_browser_lists_wins(client, owner):
    client.force_login(owner)
    body = client.get(reverse("chat:home"), HTTP_ACCEPT_LANGUAGE="pt;q=1.0,it;q=0.8,de;q=0.5").content.decode()
    assert '<html lang="it">' in body


def test_the_switcher_is_on_the_login_page_and_in_the_user_menu(client, owner):
    login_body = client.get(reverse("login")).content.decode()
    assert 'action="/i18n/setlang/"' in login_body and 'value="fr"' in login_body and "Français" in login_body
    client.force_login(owner)
    chat_body = client.get(reverse("chat:home")).content.decode()
    menu = chat_body[chat_body.index('id="user-menu"') :]
    assert 'id="language-switcher"' in menu and "Français" in menu and "English" in menu
    for code, name in (("de", "Deutsch"), ("es", "Español"), ("it", "Italiano")):  # each in its own language
        assert f'value="{code}" lang="{code}"' in menu and name in menu


def test_the_switcher_changes_the_language_and_it_is_remembered(client, owner):
    client.force_login(owner)
    response = client.post(
        reverse("set_language"), {"language": "fr", "next": reverse("chat:home")}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 302 and response["Location"] == reverse("chat:home")
    cookie = response.cookies[settings.LANGUAGE_COOKIE_NAME]
    assert cookie.value == "fr" and cookie["httponly"]
    # the choice wins over the browser's own language on later visits
    body = client.get(reverse("chat:home"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert FRENCH_CHAT in body
    assert 'data-language="fr" aria-pressed="true"' in body

    client.post(reverse("set_language"), {"language": "en", "next": reverse("chat:home")})
    assert ENGLISH_CHAT in client.get(reverse("chat:home"), HTTP_ACCEPT_LANGUAGE="fr").content.decode()


@pytest.mark.parametrize("language", sorted(EUROPEAN))
def test_the_switcher_offers_german_spanish_and_italian(client, owner, language):
    client.force_login(owner)
    response = client.post(
        reverse("set_language"), {"language": language, "next": reverse("chat:home")}, HTTP_ACCEPT_LANGUAGE="fr"
    )
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == language
    body = client.get(reverse("chat:home"), HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert EUROPEAN[language][1] in body and FRENCH_CHAT not in body


def test_the_switcher_does_not_redirect_elsewhere(client):
    response = client.post(reverse("set_language"), {"language": "fr", "next": "https://evil.example/"})
    assert response.status_code == 302 and "evil.example" not in response["Location"]


def test_errors_from_the_server_are_in_the_users_language(client, owner):
    conversation = Conversation.objects.create(user=owner, title="Leave questions")
    client.force_login(owner)
    response = client.post(
        reverse("chat:pin", args=[conversation.id]),
        data=json.dumps({"pinned": "maybe"}),
        content_type="application/json",
        HTTP_ACCEPT_LANGUAGE="fr",
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith("Indiquez s’il faut épingler")


def test_waiting_times_are_spelled_in_the_users_language():
    from django.utils import translation

    from assistant.accounts import ratelimit

    with translation.override("fr"):
        assert ratelimit.wait_phrase(30) == "30 secondes"
        assert ratelimit.wait_phrase(1) == "1 seconde"
    with translation.override("en"):
        assert ratelimit.wait_phrase(1) == "1 second"
        assert ratelimit.wait_phrase(120) == "2 minutes"
    for language, one, thirty, two_minutes in (
        ("de", "1 Sekunde", "30 Sekunden", "2 Minuten"),
        ("es", "1 segundo", "30 segundos", "2 minutos"),
        ("it", "1 secondo", "30 secondi", "2 minuti"),
    ):
        with translation.override(language):
            assert (ratelimit.wait_phrase(1), ratelimit.wait_phrase(30)) == (one, thirty)
            assert ratelimit.wait_phrase(120) == two_minutes


def test_the_model_is_told_the_users_interface_language(client, owner, monkeypatch):
    from assistant.chat.services import question_submit
    from tests.chat.fakes import FakeChatClient, use_fake_client

    class TitlingFake(FakeChatClient):
        async def complete(self, messages, **params) -> str:  # the conversation's title
            return "Jours de congé"

    fake = use_fake_client(monkeypatch, TitlingFake())
    conversation = Conversation.objects.create(user=owner)
    _, answer = question_submit(conversation=conversation, content="Combien de jours de congé ai-je ?")
    client.force_login(owner)
    response = client.get(reverse("chat:api_answer_stream", args=[answer.id]), HTTP_ACCEPT_LANGUAGE="fr")
    async def consume() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    events = async_to_sync(consume)().decode()
    assert "event: done" in events
    system = fake.system_prompt()
    assert "Answer in the language of the question." in system
    assert "The user's interface is in French." in system


def test_the_system_prompt_stays_short_for_the_small_model():
    from assistant.rag.prompts import SYSTEM_PROMPT, system_prompt_for

    assert "language of the question" in SYSTEM_PROMPT
    assert system_prompt_for(language="en").endswith("The user's interface is in English.")
    assert system_prompt_for(language="fr-ca").endswith("The user's interface is in French.")
    assert system_prompt_for(language="de-ch").endswith("The user's interface is in German.")
    assert system_prompt_for(language="es").endswith("The user's interface is in Spanish.")
    assert system_prompt_for(language="it").endswith("The user's interface is in Italian.")
    assert system_prompt_for(language="xx") == SYSTEM_PROMPT  # an unknown code adds nothing
    assert len(system_prompt_for(language="fr")) < 600
