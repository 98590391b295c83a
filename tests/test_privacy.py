"""Masking personal data, and who may see it whole."""
from __future__ import annotations

import pytest

from tests.factories import T0, World, advance, calendar, make_ticket
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.photos import PhotoStore
from ticketing.services.privacy import (
    mask_address,
    mask_name,
    mask_phone,
    mask_room,
    may_reveal,
)


@pytest.mark.parametrize("name,masked", [("张三丰", "张**"), ("李四", "李*"), ("王", "王*"), ("", "")])
def test_names_keep_only_the_family_name(name: str, masked: str) -> None:
    assert mask_name(name) == masked


def test_mobile_numbers_keep_the_first_three_and_last_four_digits() -> None:
    assert mask_phone("13812341234") == "138****1234"


def test_rooms_are_hidden() -> None:
    assert mask_room("2单元301") == "***"


def test_the_handler_dispatchers_and_supervisors_in_scope_may_reveal(world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    advance(ticket, "accepted", world)
    allowed = {name for name, user in world.people.items() if may_reveal(user, ticket)}
    assert allowed == {"gina", "dora", "sam", "sue", "adam"}


def test_a_grid_worker_who_is_not_the_handler_may_not_reveal(world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store, building=world.building_managed)
    advance(ticket, "accepted", world, handler=world.pete)
    assert may_reveal(world.pete, ticket)
    assert not may_reveal(world.gina, ticket)  # her grid, but not her ticket


def test_property_staff_sent_a_ticket_of_a_complex_their_company_does_not_manage_may_not_reveal(
        world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)  # 槐树院: pete's company does not manage it
    # As dispatch allowed before issue 13: any company's staff, for any ticket.
    perform(ticket, "dispatch", Actor.system(), T0, calendar(), assignee=world.pete)
    perform(ticket, "accept", Actor.staff(world.pete), T0, calendar())
    assert not may_reveal(world.pete, ticket)


@pytest.mark.parametrize("text,masked", [
    ("东怡街79号院3栋2单元301", "东怡街79号院3栋***"),
    ("南关新村4号楼", "南关新村4号楼"),
    ("社区东门外的马路边", "社区东门外的***"),
    ("", ""),
])
def test_typed_addresses_keep_the_building_and_hide_the_household(text: str, masked: str) -> None:
    assert mask_address(text) == masked
