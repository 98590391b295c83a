"""The resident adds to an open request from the tracking page: more words, more photos.

The photos follow the rules of filing (services/photos.py: the same formats, sizes and
re-encoding, at most `max_photos` at a time); the addition is a public `add_info` event
of the state machine (services/lifecycle.py), so it is on the timeline, tells the
handler, and two additions at once are one Conflict, never a half-written one.
"""
from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l

from ticketing.extensions import db
from ticketing.models import Photo, Ticket, TicketEvent
from ticketing.services import lifecycle
from ticketing.services.errors import InvalidInput
from ticketing.services.photos import PhotoStore, clean_photo
from ticketing.services.workdays import WorkCalendar


def add_info(
    ticket: Ticket,
    text: str,
    photos: list[bytes],
    now: datetime,
    calendar: WorkCalendar,
    store: PhotoStore,
    max_photo_bytes: int,
    max_photos: int,
) -> TicketEvent:
    """Add the resident's text and photos to `ticket`; the caller commits.

    Raises `InvalidInput` (too many photos, a photo refused, nothing to add),
    `IllegalTransition` (the ticket is no longer open) or `Conflict`; the photo files
    written are removed again then, so nothing is left behind. (A commit that fails
    after all this would leave the files: the caller commits at once.)
    """
    if len(photos) > max_photos:
        raise InvalidInput(_l("At most %(n)d photos.", n=max_photos), field="photos")
    cleaned = [clean_photo(data, max_photo_bytes) for data in photos]
    with store.staged() as written:
        for photo in cleaned:
            key = store.write(photo, now)
            written.append(key)
            db.session.add(Photo(ticket=ticket, kind="report", storage_key=key,
                                 content_type=photo.content_type, size_bytes=len(photo.data), created_at=now))
        # Flushes the photos with the event; on any refusal it rolls them back and the
        # files go with them.
        return lifecycle.perform(ticket, "add_info", lifecycle.Actor.resident(), now, calendar,
                                 note=text, photos=len(cleaned))
