"""An employee switches the interface to French on the login page, back to English in the menu, then to German;
a Spanish browser gets Spanish pages from the start."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User

from tests.conftest import ARTIFACTS

pytestmark = pytest.mark.e2e


def test_employee_switches_the_interface_to_french_and_back(app_server, browser):
    User.objects.create_user("amelie", password="amelie-pass-12345")
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    page = context.new_page()
    page.goto(f"{app_server}/chat/")
    assert page.locator(".login-title").inner_text() == "Sign in to continue"

    page.get_by_role("button", name="Français").click()
    page.wait_for_selector("text=Connectez-vous pour continuer")
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.locator('#language-switcher [data-language="fr"]').get_attribute("aria-pressed") == "true"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "login-french.png"))
    page.fill("#id_username", "amelie")
    page.fill("#id_password", "amelie-pass-12345")
    page.click("#login-submit")
    page.wait_for_url(re.compile(r".*/chat/$"))

    # the chat page, its placeholder and the menu are in French, and stay so after a reload
    assert page.locator(".empty-title").inner_text() == "Comment puis-je vous aider aujourd’hui ?"
    assert page.locator("#prompt").get_attribute("placeholder").startswith("Posez n’importe quelle question")
    page.reload()
    assert page.locator("#new-chat").inner_text().strip().startswith("Nouvelle discussion")
    page.click("#user-menu summary")
    assert page.locator("#memories-link").inner_text() == "Gérer les souvenirs"
    page.screenshot(path=str(ARTIFACTS / "chat-french.png"))

    page.locator("#language-switcher").get_by_role("button", name="English").click()
    page.wait_for_selector("text=How can I help you today?")
    assert page.locator("html").get_attribute("lang") == "en"

    # German from the menu: the five languages fit in the sidebar, and the whole page changes
    page.click("#user-menu summary")
    switcher = page.locator("#language-switcher")
    assert switcher.get_by_role("button").all_inner_texts() == ["English", "Français", "Deutsch", "Español", "Italiano"]
    sidebar, options = page.locator("#user-menu").bounding_box(), switcher.get_by_role("button").all()
    for option in options:
        box = option.bounding_box()
        assert box["x"] >= sidebar["x"] and box["x"] + box["width"] <= sidebar["x"] + sidebar["width"] + 1
    switcher.get_by_role("button", name="Deutsch").click()
    page.wait_for_selector("text=Wie kann ich Ihnen heute helfen?")
    assert page.locator("html").get_attribute("lang") == "de"
    assert page.locator("#prompt").get_attribute("placeholder").startswith("Fragen Sie alles")
    assert page.locator("#new-chat").inner_text().strip().startswith("Neuer Chat")
    page.click("#user-menu summary")
    assert page.locator("#memories-link").inner_text() == "Erinnerungen verwalten"
    assert page.locator('#language-switcher [data-language="de"]').get_attribute("aria-pressed") == "true"
    page.screenshot(path=str(ARTIFACTS / "chat-german.png"))
    context.close()


def test_a_spanish_browser_gets_the_spanish_interface(app_server, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="es-ES")
    page = context.new_page()
    page.goto(f"{app_server}/chat/")
    assert page.locator(".login-title").inner_text() == "Inicie sesión para continuar"
    assert page.locator("html").get_attribute("lang") == "es"
    assert page.locator('#language-switcher [data-language="es"]').get_attribute("aria-pressed") == "true"
    context.close()
