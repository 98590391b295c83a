"""Reference data every installation starts with: the SLA tiers and the category tree.

`ensure_reference_data()` inserts what is missing and leaves admins' edits alone,
so it is safe to run on every start.
"""
from __future__ import annotations

from sqlalchemy import select

from ticketing.extensions import db
from ticketing.models import Category, SlaTier

WORKING_DAY = 24 * 60

# code, 中文, English, accept minutes, resolve minutes, working days?, rank
TIERS = [
    ("urgent", "紧急", "Urgent", 15, 24 * 60, False, 0),
    ("utility", "水电气暖", "Utilities", 30, 24 * 60, False, 1),
    ("general", "一般", "General", WORKING_DAY, 5 * WORKING_DAY, True, 2),
    ("complex", "复杂", "Complex", WORKING_DAY, 15 * WORKING_DAY, True, 3),
]

# group code, 中文, English, resident hint 中文, hint English, group tier,
#   [(code, 中文, English, tier or None for the group's, keywords)]
CATEGORIES = [
    ("repair", "维修", "Repairs", "水电、电梯、楼道灯、门禁等坏了", "Water, power, lifts, lights, doors", "general", [
        ("repair.water_leak", "水管漏水", "Burst or leaking pipe", "utility", "漏水 水管 爆管 渗水"),
        ("repair.no_water", "停水", "No water", "utility", "停水 没水 水压"),
        ("repair.power", "停电/电路故障", "Power cut or wiring", "utility", "停电 没电 跳闸 电路"),
        ("repair.heating", "暖气不热", "No heating", "utility", "暖气 供暖 不热"),
        ("repair.gas", "燃气异味", "Gas smell", "urgent", "燃气 煤气 漏气 异味"),
        ("repair.lift_trapped", "电梯困人", "People trapped in a lift", "urgent", "电梯困人 困在电梯"),
        ("repair.lift", "电梯故障", "Lift out of order", None, "电梯 故障 停运"),
        ("repair.stair_light", "楼道灯不亮", "Stairwell light out", None, "楼道灯 路灯 不亮 照明"),
        ("repair.door", "单元门/门禁损坏", "Entrance door or access control", None, "单元门 门禁 门锁"),
        ("repair.roof", "屋顶漏雨", "Leaking roof", "complex", "漏雨 屋顶 防水"),
        ("repair.other", "其他维修", "Other repairs", None, "维修 坏了"),
    ]),
    ("environment", "环境卫生", "Cleanliness", "垃圾、污水、绿化、虫鼠", "Litter, sewage, greenery, pests", "general", [
        ("environment.litter", "垃圾清运", "Rubbish not collected", None, "垃圾 清运 堆放"),
        ("environment.sewage", "下水道堵塞", "Blocked drain", "utility", "下水道 堵塞 污水 反味"),
        ("environment.greenery", "绿化养护", "Greenery", None, "绿化 树木 草坪"),
        ("environment.pests", "虫鼠害", "Pests", None, "老鼠 蟑螂 蚊虫"),
    ]),
    ("safety", "安全隐患", "Safety hazards", "消防通道、飞线充电、危险设施", "Fire exits, unsafe charging, hazards", "urgent", [
        ("safety.fire_exit", "消防通道堵塞", "Fire exit blocked", "urgent", "消防通道 堵塞 消防"),
        ("safety.charging", "飞线充电", "Unsafe e-bike charging", "general", "飞线 充电 电动车"),
        ("safety.hazard", "高空坠物/危险设施", "Falling objects or dangerous structures", "urgent", "坠物 危险 脱落"),
    ]),
    ("parking", "停车", "Parking", "乱停车、车位、充电桩", "Parking, spaces, chargers", "general", [
        ("parking.disorder", "乱停乱放", "Badly parked vehicles", None, "乱停 占道 停车"),
        ("parking.space", "车位与充电桩", "Spaces and chargers", "complex", "车位 充电桩"),
    ]),
    ("dispute", "邻里纠纷", "Neighbour disputes", "噪音、漏水到楼下、公共空间占用", "Noise, leaks downstairs, shared space", "complex", [
        ("dispute.noise", "噪音扰民", "Noise", None, "噪音 吵闹 扰民"),
        ("dispute.other", "其他纠纷", "Other disputes", None, "纠纷 矛盾 吵架"),
    ]),
    ("elderly", "助老帮扶", "Help for the elderly", "独居老人帮扶、代办、探访", "Help, errands and visits for older people", "general", [
        ("elderly.help", "生活帮扶", "Daily help", None, "老人 独居 帮忙 代买"),
        ("elderly.visit", "上门探访", "Home visit", None, "探访 看望 慰问"),
    ]),
    ("suggestion", "建议", "Suggestions", "对社区和小区的建议", "Ideas for the community", "complex", [
        ("suggestion.general", "意见建议", "Suggestion", None, "建议 希望 意见"),
    ]),
]


def ensure_reference_data() -> None:
    """Insert missing tiers and categories; existing rows are left as admins set them."""
    tiers = {t.code: t for t in db.session.scalars(select(SlaTier))}
    for code, zh, en, accept, resolve, working, rank in TIERS:
        if code not in tiers:
            tiers[code] = SlaTier(
                code=code, name_zh=zh, name_en=en, accept_minutes=accept,
                resolve_minutes=resolve, working_days=working, rank=rank,
            )
            db.session.add(tiers[code])
    existing = {c.code: c for c in db.session.scalars(select(Category))}
    for order, (code, zh, en, hint_zh, hint_en, tier, children) in enumerate(CATEGORIES):
        group = existing.get(code)
        if group is None:
            group = Category(
                code=code, name_zh=zh, name_en=en, hint_zh=hint_zh, hint_en=hint_en,
                tier=tiers[tier], sort_order=order,
            )
            db.session.add(group)
        for child_order, (child_code, czh, cen, ctier, keywords) in enumerate(children):
            if child_code not in existing:
                db.session.add(Category(
                    code=child_code, name_zh=czh, name_en=cen, parent=group,
                    tier=tiers[ctier] if ctier else None, keywords=keywords,
                    sort_order=child_order,
                ))
    db.session.flush()
