"""Reading free text: the mobile number in it, its category and confidence, urgent words;
intake's use of the guess, and the dispatcher's correction (recategorize) it learns from."""
from __future__ import annotations

import math
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update

from tests.conftest import csrf_token, login
from tests.factories import T0, TZ, World, advance, calendar, make_ticket
from ticketing.extensions import db
from ticketing.models import Category, ClassificationCorrection, Ticket
from ticketing.reference import CATEGORIES, TIERS, TRIGGER_WORDS
from ticketing.services import classify_store, intake
from ticketing.services.classify import (
    SEGMENTER,
    CategoryRef,
    Index,
    Learned,
    TierRef,
    build_index,
    classify,
    guess_with,
    normalise,
    phone_in_text,
)
from ticketing.services.errors import InvalidInput, NotAllowed, ValidationFailed
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.photos import PhotoStore


@pytest.mark.parametrize("text,phone", [
    ("电话 138-1234-5678 谢谢", "13812345678"),
    ("+86 13812345678", "13812345678"),
    ("找我：＋86 13900001111", "13900001111"),
    ("１３８１２３４５６７８", "13812345678"),
    ("订单 113812345678", None),
    ("门牌 12345678901234", None),
    ("no number", None),
    ("没有电话", None),
])
def test_the_first_mobile_number_in_a_text_is_found(text: str, phone: str | None) -> None:
    assert phone_in_text(text) == phone


# --- the classifier on its own (no database) ------------------------------------------


def reference_index() -> Index:
    """The shipped keywords and trigger words, with made-up ids in catalogue order."""
    leaves = [(code, zh, en, kw, gzh, gen) for _, gzh, gen, *_, children in CATEGORIES
              for code, zh, en, _tier, kw in children]
    categories = [(CategoryRef(i, code, zh, en, gzh, gen, i), kw)
                  for i, (code, zh, en, kw, gzh, gen) in enumerate(leaves, start=1)]
    tiers = [(TierRef(i, code, zh, en, rank, accept, resolve), TRIGGER_WORDS.get(code, ""))
             for i, (code, zh, en, accept, resolve, _working, rank) in enumerate(TIERS, start=1)]
    index = build_index(categories, tiers)
    SEGMENTER.add_words(index.words)
    return index


INDEX = reference_index()


def code_of(text: str, learned: Learned | None = None) -> str | None:
    found = guess_with(INDEX, learned or Learned(), text).category
    return found.code if found else None


def test_traditional_characters_and_full_width_latin_are_normalised() -> None:
    assert normalise("樓道燈壞了") == "楼道灯坏了"
    assert normalise("ＡＢＣ１２３") == "abc123"


def test_a_request_in_traditional_characters_finds_its_category() -> None:
    assert code_of("樓道燈壞了，晚上看不見") == "repair.stair_light"
    assert code_of("電梯困人了，快來") == "repair.lift_trapped"


def test_a_single_character_keyword_counts_only_as_a_word_of_its_own() -> None:
    index = build_index([(CategoryRef(1, "power", "电", "Power"), "电"),
                         (CategoryRef(2, "water", "水", "Water"), "水")], [])
    assert guess_with(index, Learned(), "厨房插座没有电").category.code == "power"  # type: ignore[union-attr]
    assert guess_with(index, Learned(), "我家电话坏了").category is None


def test_a_keyword_found_only_inside_another_word_counts_half() -> None:
    index = build_index([(CategoryRef(1, "light", "灯", "Light"), "道灯"),
                         (CategoryRef(2, "broken", "坏", "Broken"), "灯坏")], [])
    SEGMENTER.add_words(index.words)
    assert SEGMENTER.words(normalise("道灯坏了")) == ["道", "灯坏", "了"]
    found = guess_with(index, Learned(), "道灯坏了")
    assert found.category is not None and found.category.code == "broken"
    assert found.confidence == pytest.approx(1 / 1.5 * (1 - math.exp(-1)), abs=0.001)


def test_confidence_grows_with_evidence_and_falls_with_rival_words() -> None:
    strong = guess_with(INDEX, Learned(), "楼道灯不亮，声控灯灯泡都坏了")
    plain = guess_with(INDEX, Learned(), "楼道灯不亮")
    mixed = guess_with(INDEX, Learned(), "楼道灯不亮，楼上水管也在漏水")
    assert strong.confidence > plain.confidence > 0
    assert plain.confidence > mixed.confidence or mixed.category.code != "repair.stair_light"  # type: ignore[union-attr]
    assert 0 < mixed.confidence < 0.6


def test_a_keyword_in_several_categories_counts_less_in_each() -> None:
    index = build_index([(CategoryRef(1, "a", "甲", "A"), "堵塞 消防"), (CategoryRef(2, "b", "乙", "B"), "堵塞")], [])
    found = guess_with(index, Learned(), "消防通道堵塞")
    assert found.category is not None and found.category.code == "a"
    assert found.terms[0] == "消防"  # 1.0 beats the shared 堵塞's 0.5


def test_a_text_without_keywords_has_no_guess() -> None:
    found = guess_with(INDEX, Learned(), "你好，谢谢")
    assert (found.category, found.confidence, found.low) == (None, 0.0, True)


@pytest.mark.parametrize("text,tier,word", [
    ("楼道里有股煤气味", "urgent", "煤气味"),
    ("6号楼好像起火了，一直冒烟", "urgent", "起火"),
    ("电梯里困了人，喊不应", "urgent", "电梯 困"),
    ("被困在电梯里了", "urgent", "电梯 困"),
    ("整栋楼停水了", "utility", "停水"),
    ("燃气灶打不着火", None, None),
    ("没有起火，只是有点焦味", None, None),
    ("楼道灯不亮", None, None),
])
def test_trigger_words_put_a_request_on_their_tier(text: str, tier: str | None, word: str | None) -> None:
    found = guess_with(INDEX, Learned(), text)
    assert (found.urgent_tier.code if found.urgent_tier else None) == tier
    assert (word in found.urgent_words) if word else found.urgent_words == ()


def test_the_most_urgent_tier_wins_when_several_match() -> None:
    found = guess_with(INDEX, Learned(), "停电了，配电箱冒烟")
    assert found.urgent_tier is not None and found.urgent_tier.code == "urgent"


def test_corrections_teach_words_that_outvote_a_keyword() -> None:
    text = "楼道里电动车停满了，过不去人"
    assert code_of(text) == "safety.charging"
    fire_exit = next(ref.id for ref in INDEX.categories.values() if ref.code == "safety.fire_exit")
    learned = Learned().with_texts([(SEGMENTER.words(normalise(text)), fire_exit)] * 3)
    assert code_of("楼道里电动车停满了，人都过不去", learned) == "safety.fire_exit"


# --- the classifier on the database ----------------------------------------------------


def test_the_database_catalogue_is_used(world: World) -> None:
    assert classify("樓道燈壞了").category.code == "repair.stair_light"  # type: ignore[union-attr]
    assert classify("你好").category is None
    found = classify("3号楼楼道灯不亮").category
    assert found is not None and found.code == "repair.stair_light"


def test_a_guess_chooses_only_among_the_candidates_given(world: World) -> None:
    only = {world.category("environment.litter").id, world.category("repair.water_leak").id}
    assert classify("水管漏水，楼道灯也不亮", only).category.code == "repair.water_leak"  # type: ignore[union-attr]
    assert classify("楼道灯不亮", only).category is None


def test_an_edit_in_this_process_applies_to_the_next_guess(world: World) -> None:
    assert classify("院子里有只野猫").category is None
    pests = world.category("environment.pests")
    pests.keywords += " 野猫"
    db.session.commit()
    assert classify("院子里有只野猫").category.code == "environment.pests"  # type: ignore[union-attr]


def test_an_edit_in_another_process_applies_after_the_refresh_interval(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert classify("院子里有只野猫").category is None
    pests = world.category("environment.pests")
    # Another process's edit: no ORM event reaches this one.
    db.session.execute(update(Category).where(Category.id == pests.id).values(keywords="野猫"))
    db.session.commit()
    classify_store.STORE._forced = False
    assert classify("院子里有只野猫").category is None  # not yet due
    monkeypatch.setattr(classify_store, "REFRESH_SECONDS", 0.0)
    assert classify("院子里有只野猫").category.code == "environment.pests"  # type: ignore[union-attr]


def test_an_inactive_category_is_never_guessed(world: World) -> None:
    world.category("environment.pests").active = False
    db.session.commit()
    assert classify("老鼠蟑螂特别多").category is None


# --- intake ----------------------------------------------------------------------------


def file(world: World, store: PhotoStore, text: str, **fields: object) -> Ticket:
    request = intake.IntakeRequest(channel=str(fields.pop("channel", "wechat_oa")), description=text,
                                   phone="13812345678", community_id=world.community_a.id, **fields)  # type: ignore[arg-type]
    ticket, _ = intake.submit(request, Actor.resident(), T0, TZ, store, 5 * 1024 * 1024, route=False)
    return ticket


def test_intake_stores_the_guess_beside_the_chosen_category(world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store, category="repair.stair_light", description="楼上水管漏水，滴到我家了")
    assert ticket.category.code == "repair.stair_light"
    assert ticket.guess_category.code == "repair.water_leak"  # type: ignore[union-attr]
    assert 0 < ticket.guess_confidence <= 1  # type: ignore[operator]


def test_a_channel_without_a_picker_gets_the_guessed_category(world: World, store: PhotoStore) -> None:
    ticket = file(world, store, "3号楼地下室水管爆裂了", guess_category=True)
    assert ticket.category.code == "repair.water_leak"
    assert ticket.tier.code == "utility"


def test_without_a_guess_it_falls_back_to_suggestions(world: World, store: PhotoStore) -> None:
    ticket = file(world, store, "你好，想问一下社区几点下班", guess_category=True)
    assert ticket.category.code == "suggestion.general"
    assert (ticket.guess_category_id, ticket.guess_confidence) == (None, None)


def test_forms_still_require_a_category(world: World, store: PhotoStore) -> None:
    with pytest.raises(ValidationFailed) as caught:
        file(world, store, "3号楼地下室水管爆裂了", channel="web")
    assert "category_id" in caught.value.errors


def test_urgent_words_raise_the_tier_and_the_timeline_says_why(world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store, category="repair.stair_light", description="楼道灯线路冒烟了，像是要起火")
    assert ticket.tier.code == "urgent"
    detail = ticket.events[0].detail
    assert set(detail["urgent"]) >= {"冒烟", "起火"} and detail["urgent_tier"] == "urgent"
    assert detail["channel"] == "web"


def test_urgent_words_never_lower_a_tier(world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store, category="repair.gas", description="燃气味很大，还停水了")
    assert ticket.tier.code == "urgent"
    assert "urgent" not in ticket.events[0].detail


# --- the dispatcher's correction -------------------------------------------------------


def recategorize(ticket: Ticket, actor: Actor, code: str, world: World) -> None:
    perform(ticket, "recategorize", actor, T0 + timedelta(minutes=5), calendar(), category=world.category(code))
    db.session.commit()


def test_a_correction_changes_the_category_and_is_kept(world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store, category="repair.stair_light", description="楼上水管漏水，滴到我家了")
    recategorize(ticket, Actor.staff(world.dora), "repair.water_leak", world)
    assert ticket.category.code == "repair.water_leak"
    row = db.session.scalars(select(ClassificationCorrection)).one()
    assert (row.ticket_id, row.text, row.user_id) == (ticket.id, ticket.description, world.dora.id)
    assert row.guessed_category.code == "repair.water_leak"  # type: ignore[union-attr]
    assert row.chosen_category.code == "repair.water_leak"
    event = ticket.events[-1]
    assert (event.action, event.public, event.to_status) == ("recategorize", False, "submitted")
    assert event.detail["from"] == "repair.stair_light" and event.detail["to"] == "repair.water_leak"


def test_a_waiting_ticket_takes_the_new_categorys_tier(world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store, category="repair.stair_light", description="楼上水管漏水")
    recategorize(ticket, Actor.staff(world.dora), "repair.water_leak", world)
    assert ticket.tier.code == "utility"
    assert ticket.events[-1].detail["tier"] == {"from": "general", "to": "utility"}


def test_a_dispatched_ticket_keeps_its_tier_and_running_deadline(world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store, category="repair.stair_light", description="楼上水管漏水"),
                     "dispatched", world)
    due = ticket.accept_due_at
    recategorize(ticket, Actor.staff(world.sam), "repair.water_leak", world)
    assert (ticket.category.code, ticket.tier.code, ticket.accept_due_at) == ("repair.water_leak", "general", due)
    assert ticket.events[-1].detail["tier_kept"] == "general"


def test_a_correction_keeps_the_urgency_intake_found(world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store, category="repair.stair_light", description="楼道配电箱冒烟了")
    recategorize(ticket, Actor.staff(world.dora), "repair.other", world)
    assert ticket.tier.code == "urgent"


@pytest.mark.parametrize("code", ["repair.stair_light", "repair"])
def test_the_same_category_or_a_whole_group_is_refused(world: World, store: PhotoStore, code: str) -> None:
    ticket = make_ticket(world, store, category="repair.stair_light")
    with pytest.raises(InvalidInput):
        recategorize(ticket, Actor.staff(world.dora), code, world)
    assert db.session.scalars(select(ClassificationCorrection)).first() is None


def test_handlers_may_not_change_the_category(world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    with pytest.raises(NotAllowed):
        recategorize(ticket, Actor.staff(world.gina), "repair.other", world)


def test_corrections_change_future_guesses(world: World, store: PhotoStore) -> None:
    text = "楼道里电动车停满了，过不去人"
    assert classify(text).category.code == "safety.charging"  # type: ignore[union-attr]
    for n in range(3):
        ticket = make_ticket(world, store, category="safety.charging", description=text + "。" * n)
        recategorize(ticket, Actor.staff(world.dora), "safety.fire_exit", world)
    again = classify("楼道里电动车停满了，人都过不去")
    assert again.category is not None and again.category.code == "safety.fire_exit"


# --- what the staff see ----------------------------------------------------------------


@pytest.mark.usefixtures("english")
def test_the_ticket_page_shows_the_guess_and_the_dispatcher_corrects_it(
    client: FlaskClient, world: World, store: PhotoStore
) -> None:
    ticket = make_ticket(world, store, category="repair.stair_light", description="楼上水管漏水，滴到我家了")
    login(client, world.dora)
    html = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "Guessed:" in html and "Burst or leaking pipe" in html
    assert f"({round(ticket.guess_confidence * 100)}%)" in html  # type: ignore[operator]
    assert "differs from the category" in html and "漏水" in html
    assert 'id="action-recategorize"' in html
    token = csrf_token(client, f"/tickets/{ticket.number}")
    response = client.post(f"/tickets/{ticket.number}/act/recategorize", data={
        "csrf_token": token, "category": str(world.category("repair.water_leak").id), "note": ""})
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).category.code == "repair.water_leak"  # type: ignore[union-attr]
    html = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "differs from the category" not in html


@pytest.mark.usefixtures("english")
def test_a_handler_sees_the_guess_but_no_correction_form(
    client: FlaskClient, world: World, store: PhotoStore
) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    login(client, world.gina)
    html = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "Guessed:" in html and 'id="action-recategorize"' not in html


@pytest.mark.usefixtures("english")
def test_the_queue_marks_a_doubtful_category(client: FlaskClient, world: World, store: PhotoStore) -> None:
    make_ticket(world, store, category="repair.stair_light", description="楼上水管漏水，滴到我家了")
    login(client, world.dora)
    assert "Check the category" in client.get("/console/").get_data(as_text=True)


@pytest.mark.usefixtures("english")
def test_group_chat_drafts_show_the_guess_and_urgent_words(client: FlaskClient, world: World) -> None:
    login(client, world.dora)
    response = client.post("/patrol/groupchat", data={
        "csrf_token": csrf_token(client, "/patrol/groupchat"),
        "text": "张阿姨 10:32\n红星小区3栋楼道里有煤气味\n李师傅 10:35\n你好"})
    html = response.get_data(as_text=True)
    assert "Guessed:" in html and "Gas smell" in html and "Urgent words: 煤气味" in html
    assert "No guess" in html
