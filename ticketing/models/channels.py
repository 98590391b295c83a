"""What the machine-facing doors keep: API keys for client apps and staff apps,
what WeChat followers told us (where they are, their phone, their last place), and the nonces of
WeChat's signed callbacks already seen."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ticketing.extensions import Model
from ticketing.models.people import User
from ticketing.models.places import Grid
from ticketing.models.types import UTCDateTime, utcnow


class KeyKind(StrEnum):
    """What a key opens."""

    OPEN311 = "open311"  # a client app posting GeoReport v2 requests
    STAFF = "staff"  # a staff app acting as one staff account on /api/v1


class ApiKey(Model):
    """A key issued once to a client app or a staff app; only its SHA-256 is stored.

    Keys are long random strings, so a plain SHA-256 is enough to make a stolen
    table useless and cheap enough to check on every request.
    """

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str] = mapped_column(String(100))
    # The first characters of the key, shown in lists so people can tell keys apart.
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # For staff keys: the account the key acts as.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User | None] = relationship(foreign_keys=[user_id])
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class WechatFollower(Model):
    """What we remember of a WeChat official-account follower, so they need not retype it.

    Their last location message, placed in a grid (`lat` … `located_at`): a text
    message that follows soon after is filed at that grid. Their mobile number and the
    place of their last request (`phone`, `last_*`, services/followers.py): later
    requests, by message or through the menu's web form, need neither — a place the
    text names still wins. The phone is personal data: erased on the follower's
    request (忘记我) and by retention once none of their tickets holds personal data.
    """

    __tablename__ = "wechat_followers"

    openid: Mapped[str] = mapped_column(String(64), primary_key=True)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    label: Mapped[str] = mapped_column(String(200), default="")
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"))  # the location's grid
    located_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    phone: Mapped[str] = mapped_column(String(20), default="", server_default="")
    last_community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id"))
    last_complex_id: Mapped[int | None] = mapped_column(ForeignKey("complexes.id"))
    last_building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id"))
    last_grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"))
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # phone or last place

    grid: Mapped[Grid | None] = relationship(foreign_keys=[grid_id])


class WechatNonce(Model):
    """A signed WeChat callback already seen, kept while its timestamp is acceptable.

    Used when Redis is not configured or not answering (services/nonces.py); `key`
    digests the timestamp, nonce and signature, `fingerprint` the request it came with.
    """

    __tablename__ = "wechat_nonces"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
