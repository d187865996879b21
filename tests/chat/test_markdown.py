"""How answers render: markdown kept, active content and remote images never loaded."""

from __future__ import annotations

from assistant.rag.citations import finalize_answer


def render(text: str) -> str:
    return finalize_answer(text, [])[0]


def test_code_blocks_keep_their_language_for_highlighting():
    html = render("Run:\n\n```python\nprint('hi')\n```\n")
    assert '<pre><code class="language-python">' in html
    assert "print(&#39;hi&#39;)" in html or "print('hi')" in html


def test_tables_and_lists_render():
    html = render("| a | b |\n| --- | --- |\n| 1 | 2 |\n\n- one\n- two\n\n1. first\n")
    assert "<table>" in html and "<td>1</td>" in html
    assert "<ul>" in html and "<ol>" in html


def test_a_remote_image_becomes_a_link_and_is_never_loaded():
    html = render("See ![the chart](https://tracker.example/pixel.png?u=42)")
    assert "<img" not in html
    assert 'class="image-link"' in html
    assert 'href="https://tracker.example/pixel.png?u=42"' in html
    assert "Image: the chart" in html


def test_an_image_with_a_script_url_keeps_no_link():
    html = render("![x](javascript:alert(1)) ![y](data:image/png;base64,AAAA)")
    assert "<img" not in html and "href=" not in html and "data:image" not in html
    assert "Image: y" in html


def test_raw_html_and_handlers_stay_text():
    html = render('<b onclick="x()">bold</b> <span style="color:red">red</span>')
    assert "<b " not in html and "<span" not in html
    assert "&lt;b onclick=" in html and "&lt;span style=" in html  # shown as text, never parsed
