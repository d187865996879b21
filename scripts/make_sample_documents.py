"""Recreate the binary demo documents in samples/handbook/ from the text below.

    python scripts/make_sample_documents.py

Writes travel-policy.pdf (with fpdf2) and onboarding-checklist.docx (with python-docx).
The files are committed, so this is only needed after editing the text here. fpdf2 is not
a project dependency: install it just for this (`pip install fpdf2`). The other samples
(.md, .html, .csv, .txt) are edited by hand.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "samples" / "handbook"
# A fixed date keeps regenerated files free of spurious changes.
FIXED_DATE = dt.datetime(2024, 6, 3, 9, 0, tzinfo=dt.UTC)

TRAVEL_TITLE = "Northwind Robotics Travel Policy"
# (heading, paragraphs); a paragraph starting with "- " is a bullet.
TRAVEL_SECTIONS: list[tuple[str, list[str]]] = [
    (
        "",
        [
            "Version 5, valid from 1 April 2024. Owner: Finance, travel desk "
            "(travel@northwind-robotics.example). This policy covers business trips of all employees; "
            "expenses other than travel are covered by the employee handbook.",
        ],
    ),
    (
        "1. Approval and booking",
        [
            "Every business trip needs the approval of your manager before anything is booked. Trips "
            "abroad of more than five days also need the approval of your department head.",
            "Flights, trains, hotels and rental cars are booked in TripNest, our corporate booking tool, "
            "at tripnest.northwind-robotics.example. Bookings made outside TripNest are only reimbursed "
            "when TripNest had no offer, and the traveller must attach a screenshot showing that.",
            "Book flights at least 14 days before departure. The travel desk helps with complex trips "
            "and group bookings of more than 6 people.",
        ],
    ),
    (
        "2. Class of travel",
        [
            "- Trains: second class. First class is allowed for journeys longer than 4 hours.",
            "- Flights up to 6 hours: economy class.",
            "- Flights longer than 6 hours: premium economy.",
            "- Business class only for flights longer than 9 hours, with the written approval of a vice president.",
            "- Inside Germany, France and the Netherlands, take the train when the journey takes less "
            "than 5 hours door to door.",
        ],
    ),
    (
        "3. Hotels",
        [
            "Hotels are booked in TripNest at up to EUR 150 per night, breakfast included. In London, "
            "Paris, Amsterdam and Munich the limit is EUR 190 per night; in New York and San Francisco "
            "it is USD 280 per night.",
            "Stays longer than 14 nights at one place should use a serviced apartment; ask the travel desk.",
        ],
    ),
    (
        "4. Per diem allowances",
        [
            "Meals on business trips are covered by a daily allowance (per diem) instead of receipts. "
            "A full day is a calendar day spent entirely away from home; a partial day is an arrival or "
            "departure day, or a day trip of more than 8 hours.",
            "- Germany: EUR 28 per full day, EUR 14 per partial day.",
            "- France: EUR 45 per full day, EUR 23 per partial day.",
            "- Poland: EUR 29 per full day, EUR 15 per partial day.",
            "- Netherlands: EUR 47 per full day, EUR 24 per partial day.",
            "- United States: USD 64 per full day, USD 32 per partial day.",
            "When a meal is provided (by the hotel, a customer or a conference), the per diem is reduced "
            "by 20 % for breakfast and 40 % each for lunch and dinner. Claim per diems in Spendwise after "
            "the trip.",
        ],
    ),
    (
        "5. Cars and local transport",
        [
            "Rental cars are compact class or smaller and are booked in TripNest. Private cars used for "
            "business trips are reimbursed at EUR 0.30 per kilometre. Taxis are allowed when public "
            "transport would take more than 30 minutes longer, and always between 22:00 and 06:00.",
        ],
    ),
    (
        "6. Insurance and safety",
        [
            "All business trips are covered by the company's group travel insurance, policy number "
            "NWR-TRV-2024-118, including medical treatment abroad and repatriation. In an emergency "
            "abroad, call the assistance line +49 40 5550 1777, day and night.",
            "Trips to countries with a travel warning of the German Federal Foreign Office need the "
            "approval of the security team before booking.",
        ],
    ),
]

ONBOARDING_TITLE = "Onboarding Checklist for New Employees"
ONBOARDING_INTRO = [
    "Welcome to Northwind Robotics! This checklist shows what happens in your first 90 days and who "
    "is responsible for each step. Your manager and your onboarding buddy go through it with you.",
    "Your onboarding buddy is a colleague from another team who has been with the company for at least "
    "a year. Buddies meet new employees for lunch in the first week (paid by the company, up to "
    "EUR 25 per person) and then every two weeks until day 90.",
]
ONBOARDING_TABLE: list[tuple[str, str, str]] = [
    ("When", "Task", "Owner"),
    ("Before day 1", "Laptop ordered and enrolled in device management", "IT Service Desk"),
    ("Before day 1", "Harbor account created and contract signed electronically", "People team"),
    ("Day 1", "Welcome session at 09:30 in the Lighthouse room (Hamburg, 3rd floor)", "People team"),
    ("Day 1", "Badge photo at reception and building tour", "Office management"),
    ("Day 1", "Set up Bitwarden, MFA and NorthGate VPN", "New employee with IT Service Desk"),
    ("Week 1", "Complete security awareness training SEC-101 (45 minutes)", "New employee"),
    ("Week 1", "Lunch with your onboarding buddy", "Onboarding buddy"),
    ("Week 2", "Robot safety briefing in the test hall before entering any robot area", "Safety officer"),
    ("Week 4", "Agree on goals for the probation period", "Manager"),
    ("Day 30", "First check-in with your manager", "Manager"),
    ("Day 90", "Probation review; the probation period is six months", "Manager and People team"),
]
ONBOARDING_OUTRO = [
    "Questions during onboarding go to onboarding@northwind-robotics.example. Please give feedback on "
    "your onboarding in the survey you receive on day 30.",
]


def make_travel_pdf(path: Path) -> None:
    from fpdf import FPDF  # only needed to regenerate

    pdf = FPDF(format="A4")
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_title(TRAVEL_TITLE)
    pdf.set_author("Northwind Robotics Finance")
    pdf.set_margins(20, 20, 20)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 18)
    pdf.multi_cell(0, 10, TRAVEL_TITLE, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    for heading, paragraphs in TRAVEL_SECTIONS:
        if heading:
            pdf.set_font("Helvetica", "B", 13)
            pdf.multi_cell(0, 8, heading, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1)
        pdf.set_font("Helvetica", "", 11)
        for paragraph in paragraphs:
            if paragraph.startswith("- "):
                pdf.set_x(26)
                pdf.multi_cell(0, 6, "- " + paragraph[2:], new_x="LMARGIN", new_y="NEXT")
                pdf.ln(1)
            else:
                pdf.multi_cell(0, 6, paragraph, new_x="LMARGIN", new_y="NEXT")
                pdf.ln(3)
        pdf.ln(2)
    pdf.output(str(path))


def make_onboarding_docx(path: Path) -> None:
    import docx

    document = docx.Document()
    props = document.core_properties
    props.title = ONBOARDING_TITLE
    props.author = "Northwind Robotics People team"
    props.created = props.modified = FIXED_DATE.replace(tzinfo=None)
    document.add_heading(ONBOARDING_TITLE, level=0)
    for paragraph in ONBOARDING_INTRO:
        document.add_paragraph(paragraph)
    document.add_heading("Your first 90 days", level=1)
    table = document.add_table(rows=0, cols=3)
    table.style = "Table Grid"
    for row in ONBOARDING_TABLE:
        cells = table.add_row().cells
        for cell, value in zip(cells, row, strict=True):
            cell.text = value
    for paragraph in ONBOARDING_OUTRO:
        document.add_paragraph(paragraph)
    document.save(str(path))


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    make_travel_pdf(OUT / "travel-policy.pdf")
    make_onboarding_docx(OUT / "onboarding-checklist.docx")
    sys.stdout.write(f"wrote travel-policy.pdf and onboarding-checklist.docx in {OUT}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
