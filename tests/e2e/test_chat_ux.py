"""The chat page as an employee uses it, in a real browser against the running app and the real
model server: the sidebar (date groups, search, pin, delete and undo), versions of answers and
questions, copy buttons, highlighted code, keyboard shortcuts, phone width, dark theme.

Screenshots of the main states go to docs/screenshots/.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from assistant.chat.models import Conversation, Message
from assistant.rag.citations import finalize_answer
from tests.e2e.test_chat_browser import log_in

pytestmark = pytest.mark.e2e
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ANSWER_TIMEOUT = 240_000  # a loaded 2-core machine prefills slowly

CODE_ANSWER = (
    "Here is how to count the days left:\n\n"
    "```python\n"
    "def days_left(entitled: int, taken: int) -> int:\n"
    "    # never below zero\n"
    "    return max(0, entitled - taken)\n"
    "```\n\n"
    "| Contract | Days |\n| --- | --- |\n| Full time | 27 |\n| Part time | pro rata |\n\n"
    "- Ask your manager first\n- Book it in the HR tool\n\n"
    "![org chart](https://images.example.com/chart.png)\n"
)


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name))


def conversation(user, title: str, *, days_ago: float = 0, messages=(), pinned=False) -> Conversation:
    c = Conversation.objects.create(user=user, title=title, title_source="user")
    previous = None
    for role, text in messages:
        html = finalize_answer(text, [])[0] if role == "assistant" else ""
        previous = Message.objects.create(conversation=c, parent=previous, role=role, content=text, rendered_html=html)
    when = timezone.now() - dt.timedelta(days=days_ago)
    Conversation.objects.filter(id=c.id).update(
        updated_at=when, active_leaf=previous, pinned_at=timezone.now() if pinned else None
    )
    return c


@pytest.fixture
def employee(transactional_db):
    user = User.objects.create_user("erin", password="erin-pass-12345", first_name="Erin")
    conversation(user, "Laptop encryption", days_ago=0.01,
                 messages=[("user", "Must my laptop be encrypted?"), ("assistant", "Yes, with BitLocker.")])
    conversation(user, "Parental leave", days_ago=1,
                 messages=[("user", "How long is parental leave?"), ("assistant", "Sixteen weeks.")])
    conversation(user, "Travel to Lyon", days_ago=3,
                 messages=[("user", "Can I take a taxi from the airport?"),
                           ("assistant", "Yes: the per diem covers a taxi up to 60 euros.")])
    conversation(user, "Expense policy", days_ago=12,
                 messages=[("user", "Where do I file receipts?"), ("assistant", "In the finance portal.")])
    conversation(user, "Onboarding checklist", days_ago=75)
    other = User.objects.create_user("olga", password="olga-pass-12345")
    conversation(other, "Taxi fraud case", messages=[("user", "taxi"), ("assistant", "per diem taxi")])
    return user


def sidebar_titles(page) -> list[str]:
    return [t.strip() for t in page.locator("#conversation-list .conversation-link").all_inner_texts()]


def test_sidebar_groups_search_pin_delete_and_undo(app_server, browser, employee):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    log_in(page, app_server, "erin", "erin-pass-12345")

    groups = page.locator("#conversation-list .conversation-group h2").all_inner_texts()
    assert groups[:4] == ["Today", "Yesterday", "Previous 7 days", "Previous 30 days"], groups
    assert len(groups) == 5 and re.match(r"\w+ \d{4}$", groups[4]), groups
    assert "Taxi fraud case" not in sidebar_titles(page)

    # Ctrl+K focuses search; results come from message content as one types, only one's own
    page.locator("#prompt").click()
    page.keyboard.press("Control+k")
    assert page.evaluate("document.activeElement.id") == "conversation-search"
    page.keyboard.type("per di")
    results = page.locator("#search-results .search-result")
    results.first.wait_for(timeout=10_000)
    assert results.count() == 1
    assert "Travel to Lyon" in results.first.inner_text()
    assert "per diem" in results.first.locator(".search-snippet").inner_text()
    assert page.locator("#conversation-list").is_hidden()
    shot(page, "chat-search.png")
    page.keyboard.press("Escape")
    assert page.locator("#conversation-list").is_visible()

    # pin: the conversation moves to a "Pinned" group on top, and stays there after a reload
    item = page.locator("#conversation-list li.conversation-item", has_text="Expense policy")
    item.hover()
    item.locator(".pin-button").click()
    pinned = page.locator('#conversation-list section[data-group="pinned"]')
    pinned.wait_for(timeout=10_000)
    assert pinned.locator(".conversation-link").all_inner_texts() == ["Expense policy"]
    assert page.locator("#conversation-list .conversation-group h2").first.inner_text() == "Pinned"
    page.reload()
    pinned = page.locator('#conversation-list section[data-group="pinned"] .conversation-link')
    assert pinned.inner_text() == "Expense policy"
    shot(page, "chat-sidebar.png")

    # delete: gone at once, with an "Undo" that brings it back
    item = page.locator("#conversation-list li.conversation-item", has_text="Parental leave")
    item.hover()
    item.locator(".delete-button").click()
    toast = page.locator("#toast-region .toast")
    toast.wait_for(timeout=10_000)
    assert "deleted" in toast.inner_text().lower()
    assert "Parental leave" not in sidebar_titles(page)
    assert Conversation.objects.get(title="Parental leave").deleted_at is not None
    shot(page, "chat-undo.png")
    toast.get_by_role("button", name="Undo").click()
    page.locator("#conversation-list .conversation-link", has_text="Parental leave").wait_for(timeout=10_000)
    assert Conversation.objects.get(title="Parental leave").deleted_at is None

    # deleting the open conversation goes to a new chat, still offering the undo
    page.locator("#conversation-list .conversation-link", has_text="Laptop encryption").click()
    page.wait_for_url(re.compile(r".*/chat/c/.+/$"))
    item = page.locator("#conversation-list li.conversation-item.active")
    item.hover()
    item.locator(".delete-button").click()
    page.wait_for_url(re.compile(r".*/chat/$"))
    page.locator("#toast-region .toast").get_by_role("button", name="Undo").click()
    page.wait_for_url(re.compile(r".*/chat/c/.+/$"))
    assert "Yes, with BitLocker." in page.locator("#messages").inner_text()

    # rename in place: the title changes in the sidebar and the header, and the draft stays
    page.locator("#prompt").fill("a draft I am still writing")
    url = page.url
    item = page.locator("#conversation-list li.conversation-item.active")
    item.hover()
    item.locator(".rename-button").click()
    field = item.locator(".rename-form input[name=title]")
    field.fill("Disk encryption rules")
    field.press("Enter")
    item.locator(".conversation-link", has_text="Disk encryption rules").wait_for(timeout=10_000)
    assert page.locator("#conversation-title").inner_text() == "Disk encryption rules"
    assert page.url == url and page.locator("#prompt").input_value() == "a draft I am still writing"
    assert Conversation.objects.filter(title="Disk encryption rules", user=employee).exists()
    page.locator("#prompt").fill("")

    # Ctrl+Shift+O starts a new chat
    page.keyboard.press("Control+Shift+O")
    page.wait_for_url(re.compile(r".*/chat/$"))
    assert page.locator("#empty-state").is_visible()
    # the keyboard hint is on screen
    assert "Shift" in page.locator("#keyboard-hint").inner_text()


def test_code_is_highlighted_and_copied_and_images_are_not_loaded(app_server, browser, employee):
    c = conversation(employee, "Days left script", messages=[("user", "How do I count my days left?"),
                                                              ("assistant", CODE_ANSWER)])
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=app_server)
    page = context.new_page()
    remote_requests = []
    page.on("request", lambda r: remote_requests.append(r.url) if "images.example.com" in r.url else None)
    log_in(page, app_server, "erin", "erin-pass-12345")
    page.goto(f"{app_server}{c.get_absolute_url()}")

    answer = page.locator("article.message-assistant").last
    code = answer.locator(".code-block pre code.hljs")
    code.wait_for(timeout=10_000)
    assert code.locator(".hljs-keyword").first.inner_text() == "def"
    assert code.locator(".hljs-comment").count() == 1
    assert answer.locator(".code-language").inner_text() == "python"
    assert answer.locator("table td").count() == 4 and answer.locator("ul li").count() == 2
    link = answer.locator("a.image-link")
    assert "org chart" in link.inner_text() and answer.locator("img").count() == 0
    assert remote_requests == []

    answer.locator(".copy-code-button").click()
    answer.locator('.copy-code-button[data-copied="true"]').wait_for()  # the clipboard answers asynchronously
    assert page.evaluate("navigator.clipboard.readText()").startswith("def days_left(entitled: int, taken: int)")
    answer.hover()
    answer.locator(".copy-answer-button").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("Here is how to count the days left:") and "return max(0, entitled - taken)" in copied
    shot(page, "chat-code.png")

    # dark theme: toggled, remembered across pages
    assert page.evaluate("document.documentElement.dataset.theme || ''") == ""
    page.click("#theme-toggle")
    theme = page.evaluate("document.documentElement.dataset.theme")
    page.reload()
    assert page.evaluate("document.documentElement.dataset.theme") == theme
    if theme != "dark":  # the machine itself prefers dark: one more click
        page.click("#theme-toggle")
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background in ("rgb(22, 22, 22)",), background
    page.locator("article.message-assistant .code-block").last.wait_for()
    shot(page, "chat-dark.png")
    context.close()


def test_phone_width_menu_opens_the_sidebar(app_server, browser, employee):
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    log_in(page, app_server, "erin", "erin-pass-12345")
    sidebar = page.locator("#sidebar")
    assert not sidebar.is_visible() or sidebar.bounding_box()["x"] + sidebar.bounding_box()["width"] <= 0
    prompt = page.locator("#prompt").bounding_box()
    assert prompt["x"] >= 0 and prompt["x"] + prompt["width"] <= 390
    shot(page, "chat-phone.png")
    page.click("#sidebar-toggle")
    page.wait_for_function("() => { const r = document.getElementById('sidebar').getBoundingClientRect();"
                           " return r.left >= 0 && r.width > 200; }")
    assert page.locator("#conversation-search").is_visible()
    page.locator("#conversation-list .conversation-link", has_text="Travel to Lyon").wait_for()
    page.wait_for_function("() => document.getAnimations().every(a => a.playState !== 'running')")  # slid in
    shot(page, "chat-phone-menu.png")
    page.locator("#conversation-list .conversation-link", has_text="Travel to Lyon").click()
    page.wait_for_url(re.compile(r".*/chat/c/.+/$"))
    assert "per diem" in page.locator("#messages").inner_text()
    assert page.get_attribute("#sidebar-toggle", "aria-expanded") == "false"


def wait_answer_done(page, count: int) -> None:
    page.wait_for_function(
        "n => { const a = [...document.querySelectorAll('article.message-assistant')];"
        " return a.length >= 1 && document.querySelectorAll('article.message').length >= n"
        " && ['complete', 'stopped'].includes(a[a.length - 1].dataset.status); }",
        arg=count,
        timeout=ANSWER_TIMEOUT,
    )


@pytest.mark.llm
def test_regenerate_and_edit_keep_every_version_reachable(app_server, browser, transactional_db):
    User.objects.create_user("sam", password="sam-pass-123456")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, app_server, "sam", "sam-pass-123456")

    # Shift+Enter makes a new line, Enter sends
    page.fill("#prompt", "Name two colours of the rainbow.")
    page.locator("#prompt").press("Shift+Enter")
    assert page.locator("#prompt").input_value().endswith("\n")
    page.locator("#prompt").press("Enter")
    wait_answer_done(page, 2)
    first_answer = page.locator("article.message-assistant .message-body").last.inner_text()
    assert first_answer.strip()

    # the model names the conversation after the first answer
    c = Conversation.objects.get(user__username="sam")
    deadline = time.monotonic() + 60
    while Conversation.objects.get(id=c.id).title_source != "model" and time.monotonic() < deadline:
        time.sleep(0.5)
    c.refresh_from_db()
    assert c.title_source == "model" and c.title != "New conversation"
    page.wait_for_function(
        "t => document.querySelector('#conversation-list li.active .conversation-link').textContent.trim() === t",
        arg=c.title, timeout=30_000,
    )

    # regenerate: a second answer, the first one a click away
    answer = page.locator("article.message-assistant").last
    answer.hover()
    answer.locator(".regenerate-button").click()
    page.wait_for_function(
        "() => { const a = document.querySelector('article.message-assistant');"
        " return a && a.dataset.status === 'complete' && a.querySelector('.version-label'); }",
        timeout=ANSWER_TIMEOUT,
    )
    answer = page.locator("article.message-assistant").last
    assert answer.locator(".version-label").inner_text() == "2/2"
    assert page.locator("article.message-assistant").count() == 1
    answer.locator(".version-prev").click()
    page.wait_for_function("() => document.querySelector('article.message-assistant .version-label')"
                           ".textContent.trim() === '1/2'")
    assert page.locator("article.message-assistant .message-body").inner_text() == first_answer
    page.locator("article.message-assistant .version-next").click()
    page.wait_for_function("() => document.querySelector('article.message-assistant .version-label')"
                           ".textContent.trim() === '2/2'")
    shot(page, "chat-versions.png")

    # edit the question: a new branch; the old question and its answers stay reachable
    question = page.locator("article.message-user").first
    question.hover()
    question.locator(".edit-question-button").click()
    editor = question.locator(".edit-form textarea")
    editor.fill("Name three colours of the rainbow.")
    shot(page, "chat-edit.png")
    editor.press("Enter")
    page.wait_for_function(
        "() => { const q = document.querySelector('article.message-user .message-body');"
        " const a = document.querySelector('article.message-assistant');"
        " return q && q.textContent.includes('three') && a && a.dataset.status === 'complete'; }",
        timeout=ANSWER_TIMEOUT,
    )
    question = page.locator("article.message-user").first
    assert question.locator(".message-body").inner_text().strip() == "Name three colours of the rainbow."
    assert question.locator(".version-label").inner_text() == "2/2"
    question.locator(".version-prev").click()
    page.wait_for_function("() => document.querySelector('article.message-user .version-label')"
                           ".textContent.trim() === '1/2'")
    assert page.locator("article.message-user .message-body").inner_text().strip() == "Name two colours of the rainbow."
    assert page.locator("article.message-assistant .version-label").inner_text() == "2/2"

    # the same after a reload: the server shows the branch picked last
    page.reload()
    assert page.locator("article.message-user .message-body").inner_text().strip() == "Name two colours of the rainbow."
    c.refresh_from_db()
    path = [m.content for m in Message.objects.filter(conversation=c).order_by("created_at")]
    assert len(path) == 5  # question, two answers, edited question, its answer
