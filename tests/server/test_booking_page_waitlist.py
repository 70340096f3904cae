"""The page's waitlist: "no time suits? tell me when one opens" joins the same waitlist as every channel."""
from __future__ import annotations

import httpx2 as httpx
from sqlalchemy import select

from nextslot.storage.tables import Customer, WaitlistEntry
from tests.server.test_booking_page import settings, slug_of


def test_a_visitor_joins_the_waitlist_from_the_service_page_and_bad_dates_are_explained(
        live_server, service, make_business, session_factory):
    garage = make_business("garage")
    slug = slug_of(service, garage)
    with live_server(frozen=True, settings=settings()) as server, \
            httpx.Client(base_url=server.url, follow_redirects=True) as http:
        times = http.get(f"/b/{slug}/oil-change", params={"tz": "America/New_York"})
        assert "/b/%s/oil-change/waitlist" % slug in times.text
        page = http.get(f"/b/{slug}/oil-change/waitlist", params={"tz": "America/New_York"})
        assert page.status_code == 200 and '<label for="w-from">' in page.text

        form = {"tz": "America/New_York", "customer.name": "Ada", "customer.phone": "+12125550301",
                "customer.email": "", "earliest_date": "2026-11-30", "latest_date": "2026-11-27",
                "day_start": "09:00", "day_end": "12:00"}
        reversed_dates = http.post(f"/b/{slug}/oil-change/waitlist", data=form)
        assert reversed_dates.status_code == 422 and 'data-code="window_reversed"' in reversed_dates.text
        joined = http.post(f"/b/{slug}/oil-change/waitlist", data={**form, "latest_date": "2026-12-04"})
        assert joined.status_code == 200 and "You're on the waitlist" in joined.text
    with session_factory() as s:
        entry = s.scalars(select(WaitlistEntry).join(Customer, Customer.id == WaitlistEntry.customer_id)
                          .where(Customer.phone == "+12125550301", WaitlistEntry.business_id == garage)).one()
    assert (entry.source, entry.status, entry.day_start_minute, entry.day_end_minute) == ("page", "waiting", 540, 720)


def test_a_name_sent_as_a_file_is_no_name_and_is_never_stored_as_one(live_server, service, make_business,
                                                                    session_factory):
    garage = make_business("garage")
    slug = slug_of(service, garage)
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        answer = http.post(f"/b/{slug}/oil-change/waitlist", files={"customer.name": ("x.txt", b"Ada", "text/plain")},
                           data={"customer.phone": "+12125550302", "earliest_date": "2026-11-30",
                                 "latest_date": "2026-12-04"})
    assert answer.status_code == 422 and "UploadFile" not in answer.text
    with session_factory() as s:
        assert s.scalars(select(Customer.name).where(Customer.business_id == garage,
                                                     Customer.phone == "+12125550302")).all() == []
