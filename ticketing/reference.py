"""Reference data every installation starts with: the SLA tiers and the category tree.

`ensure_reference_data()` inserts what is missing and leaves admins' edits alone,
so it is safe to run on every start.
"""
from __future__ import annotations

from sqlalchemy import select

from ticketing.extensions import db
from ticketing.models import Category, EmergencyGuide, SlaTier

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
# Keywords are the words residents use (services/classify.py matches them as whole
# words after segmentation); a word in several categories counts less in each.
Subcategory = tuple[str, str, str, str | None, str]
CATEGORIES: list[tuple[str, str, str, str, str, str, list[Subcategory]]] = [
    ("repair", "维修", "Repairs", "水电、电梯、楼道灯、门禁等坏了", "Water, power, lifts, lights, doors", "general", [
        ("repair.water_leak", "水管漏水", "Burst or leaking pipe", "utility",
         "漏水 水管 爆管 渗水 水管爆裂 管道 跑水 冒水 滴水 阀门 水龙头 总阀 漏"),
        ("repair.no_water", "停水", "No water", "utility",
         "停水 没水 水压 断水 不出水 自来水 供水 二次供水 水泵 水小"),
        ("repair.power", "停电/电路故障", "Power cut or wiring", "utility",
         "停电 没电 跳闸 电路 断电 电闸 总闸 配电箱 空开 短路 电线 线路 插座 电表"),
        ("repair.heating", "暖气不热", "No heating", "utility",
         "暖气 供暖 不热 暖气片 供热 取暖 地暖 室温 排气"),
        ("repair.gas", "燃气异味", "Gas smell", "urgent",
         "燃气 煤气 漏气 异味 天然气 燃气味 煤气味 燃气灶 燃气表 液化气"),
        ("repair.lift_trapped", "电梯困人", "People trapped in a lift", "urgent",
         "电梯困人 困在电梯 被困 困人 关在电梯 卡在"),
        ("repair.lift", "电梯故障", "Lift out of order", None,
         "电梯 故障 停运 电梯坏 电梯门 异响 维保 故障代码"),
        ("repair.stair_light", "楼道灯不亮", "Stairwell light out", None,
         "楼道灯 路灯 不亮 照明 灯泡 声控灯 感应灯 灯管 灯坏 车库灯 黑乎乎"),
        ("repair.door", "单元门/门禁损坏", "Entrance door or access control", None,
         "单元门 门禁 门锁 防盗门 大门 铁门 合页 关不上 门卡 电子门"),
        ("repair.roof", "屋顶漏雨", "Leaking roof", "complex",
         "漏雨 屋顶 防水 顶楼 屋面 楼顶 渗漏 墙皮 防水层"),
        ("repair.other", "其他维修", "Other repairs", None,
         "维修 修理 破损 损坏 井盖 台阶 扶手 栏杆 窗户 松动 地面 墙面"),
    ]),
    ("environment", "环境卫生", "Cleanliness", "垃圾、污水、绿化、虫鼠", "Litter, sewage, greenery, pests", "general", [
        ("environment.litter", "垃圾清运", "Rubbish not collected", None,
         "垃圾 清运 堆放 垃圾桶 建筑垃圾 装修垃圾 乱倒 满出来 保洁 卫生 杂物"),
        ("environment.sewage", "下水道堵塞", "Blocked drain", "utility",
         "下水道 堵塞 污水 反味 堵了 化粪池 下水井 排水 地漏 马桶 臭味"),
        ("environment.greenery", "绿化养护", "Greenery", None,
         "绿化 树木 草坪 树枝 修剪 大树 枯树 绿地 杂草 种菜 开荒"),
        ("environment.pests", "虫鼠害", "Pests", None,
         "老鼠 蟑螂 蚊虫 蚊子 苍蝇 白蚁 消杀 灭鼠 虫子 乱窜 鼠患 马蜂"),
    ]),
    ("safety", "安全隐患", "Safety hazards", "消防通道、飞线充电、危险设施", "Fire exits, unsafe charging, hazards", "urgent", [
        ("safety.fire_exit", "消防通道堵塞", "Fire exit blocked", "urgent",
         "消防通道 堵塞 消防 消防车 灭火器 消火栓 安全出口 逃生 堵占"),
        ("safety.charging", "飞线充电", "Unsafe e-bike charging", "general",
         "飞线 充电 电动车 电瓶车 拉电线 扯电线 私拉 楼道充电"),
        ("safety.hazard", "高空坠物/危险设施", "Falling objects or dangerous structures", "urgent",
         "坠物 危险 脱落 高空坠物 外墙 瓷砖 空调外机 掉下来 广告牌 危房 裂缝"),
    ]),
    ("parking", "停车", "Parking", "乱停车、车位、充电桩", "Parking, spaces, chargers", "general", [
        ("parking.disorder", "乱停乱放", "Badly parked vehicles", None,
         "乱停 占道 停车 乱停车 僵尸车 挪车 外来车辆 堵门 车辆"),
        ("parking.space", "车位与充电桩", "Spaces and chargers", "complex",
         "车位 充电桩 停车位 停车难 车棚"),
    ]),
    ("dispute", "邻里纠纷", "Neighbour disputes", "噪音、漏水到楼下、公共空间占用", "Noise, leaks downstairs, shared space", "complex", [
        ("dispute.noise", "噪音扰民", "Noise", None,
         "噪音 吵闹 扰民 声音太大 音响 广场舞 太吵 睡不好 跳绳 装修噪音"),
        ("dispute.other", "其他纠纷", "Other disputes", None,
         "纠纷 矛盾 吵架 邻居 调解 协商 吵 不讲理 占用"),
    ]),
    ("elderly", "助老帮扶", "Help for the elderly", "独居老人帮扶、代办、探访", "Help, errands and visits for older people", "general", [
        ("elderly.help", "生活帮扶", "Daily help", None,
         "老人 独居 帮忙 代买 助餐 送餐 买药 腿脚不便 行动不便 照顾 老伴 志愿者"),
        ("elderly.visit", "上门探访", "Home visit", None,
         "探访 看望 慰问 没见 联系不上 空巢 子女"),
    ]),
    ("suggestion", "建议", "Suggestions", "对社区和小区的建议", "Ideas for the community", "complex", [
        ("suggestion.general", "意见建议", "Suggestion", None,
         "建议 希望 意见 加装 加装电梯 申请 增设"),
    ]),
]

# The groups whose requests are about shared things, so the keyless Open311 list may
# show them (masked); the groups and their categories are created public. Elderly
# help and disputes are about a person's circumstances and stay private, as does any
# category added later until an admin makes it public. Migration 0014 lists the same.
PUBLIC_GROUPS = frozenset({"repair", "environment", "safety", "parking", "suggestion"})

# Words that put a request on a tier whatever its category, one per line; a line of
# several words needs all of them close together (see services/classify.py).
_URGENT_WORDS = (
    "燃气泄漏", "燃气泄露", "煤气泄漏", "煤气泄露", "天然气泄漏", "燃气味", "煤气味", "天然气味",
    "闻到煤气", "闻到燃气", "燃气 漏气", "煤气 漏气", "起火", "着火", "失火", "火灾", "冒烟", "爆炸",
    "电梯困人", "困在电梯", "电梯 困", "触电", "漏电", "坍塌", "倒塌", "掉落", "坠落", "高空坠物",
)
_UTILITY_WORDS = ("停水", "停电", "断水", "断电", "爆管", "水管爆裂", "水管爆了")
TRIGGER_WORDS = {"urgent": "\n".join(_URGENT_WORDS), "utility": "\n".join(_UTILITY_WORDS)}

# Words that cancel a trigger word right after them (没有起火, 打不着火): services/classify.py.
NEGATIONS = ("没有", "不", "没", "未", "无", "别")

# Words too common in requests to teach the classifier anything about their category.
STOP_WORDS = frozenset((
    "我们", "你们", "他们", "我家", "小区", "社区", "楼下", "楼上", "单元", "已经", "现在", "今天", "昨天", "一直", "还是",
    "就是", "这个", "那个", "一下", "麻烦", "谢谢", "师傅", "请问", "希望", "可以", "能不能", "没有", "什么", "怎么", "时候",
    "好几天", "一个", "问题", "反映", "处理", "情况", "院子", "院里", "早上", "中午", "晚上", "白天", "每天", "天天", "最近",
    "经常", "特别", "非常", "好几次", "外面", "里面", "附近"
))

# Extra questions of a category (Open311 service attributes).
EXTRA_FIELDS = {
    "repair.water_leak": [
        {"code": "floor", "datatype": "number", "required": False, "description": "楼层", "order": 1},
        {"code": "spreading", "datatype": "singlevaluelist", "required": False,
         "description": "水是否漫到楼道或楼下", "order": 2,
         "values": [{"key": "yes", "name": "已漫到楼道或楼下"}, {"key": "no", "name": "只在室内"}]},
    ],
    "repair.lift": [
        {"code": "trapped", "datatype": "singlevaluelist", "required": True, "description": "是否有人被困",
         "order": 1, "values": [{"key": "yes", "name": "有人被困"}, {"key": "no", "name": "无人被困"}]},
        {"code": "floor", "datatype": "number", "required": False, "description": "电梯停在几楼", "order": 2},
    ],
    "repair.lift_trapped": [
        {"code": "floor", "datatype": "number", "required": False, "description": "电梯停在几楼", "order": 1},
    ],
    "parking.disorder": [
        {"code": "plate", "datatype": "string", "required": False, "description": "车牌号", "order": 1},
    ],
}

# What to do at once, per urgent category: 中文, English, numbers to call. Given to a
# category when it is created; migration 0022 gave them to existing ones. Admins edit
# them on the category's page.
_GAS_ZH = ("请立即打开门窗通风；不要开关电灯和电器，不要点火，不要在室内打电话；关闭燃气总阀，离开室内。"
           "到室外后拨打燃气公司抢修电话；如已起火或有人不适，拨打119或120。")
_GAS_EN = ("Open the windows and doors now. Do not switch lights or appliances on or off, light nothing and do "
           "not phone indoors. Turn the gas off at the main valve and leave. Once outside, call the gas company's "
           "emergency line; if there is fire or someone feels unwell, call 119 or 120.")
_LIFT_ZH = ("被困的人请保持冷静，按电梯里的警铃或对讲按钮求救；不要扒门，不要自己爬出轿厢。"
            "拨打电梯里张贴的维保电话，或96333电梯应急处置电话；有人受伤或不适，拨打120。")
_LIFT_EN = ("Whoever is trapped: stay calm and press the alarm or intercom button in the lift. Do not force the "
            "doors or climb out. Call the maintenance number posted in the lift, or 96333, the lift emergency "
            "line; if someone is hurt or unwell, call 120.")
_FIRE_ZH = "如果已经起火或冒烟，请立即离开：走楼梯，不要乘电梯；用湿毛巾捂住口鼻，弯腰低姿撤离，并拨打119。"
_FIRE_EN = ("If there is fire or smoke, leave now by the stairs, never the lift; cover your nose and mouth with "
            "a wet cloth, keep low, and call 119.")
_FALL_ZH = "请远离可能坠落或倒塌的地方，提醒邻居绕行，不要在下面停留或停车；有人受伤请拨打120，情况危急请拨打110。"
_FALL_EN = ("Keep away from anything that may fall or collapse and warn your neighbours to go round it; do not "
            "stand or park under it. If someone is hurt, call 120; if it is dangerous now, call 110.")
_SHOCK_ZH = ("有人触电时，不要直接用手拉他：先拉下电闸断电，或用干燥的木棍把电线挑开，再拨打120。"
             "发现漏电，请远离并提醒他人，不要触碰。")
_SHOCK_EN = ("If someone has had an electric shock, do not touch them with your hands: switch the power off at "
             "the main switch first, or push the wire away with a dry stick, then call 120. Keep away from "
             "anything that leaks current and warn others.")
_COLLAPSE_ZH = "请立即远离危险区域，提醒他人绕行；有人被压或受伤，请拨打119和120。"
_COLLAPSE_EN = ("Get away from the danger now and warn others to go round it; if someone is trapped under it or "
                "hurt, call 119 and 120.")
POLICE, FIRE, AMBULANCE, LIFT = ("报警", "110"), ("火警", "119"), ("急救", "120"), ("电梯困人", "96333")
POWER = ("供电抢修", "95598")
EMERGENCY_CATEGORIES: dict[str, tuple[str, str, tuple[tuple[str, str], ...]]] = {
    "repair.gas": (_GAS_ZH, _GAS_EN, (FIRE, AMBULANCE)),
    "repair.lift_trapped": (_LIFT_ZH, _LIFT_EN, (LIFT, AMBULANCE)),
    "safety.fire_exit": (_FIRE_ZH, _FIRE_EN, (FIRE,)),
    "safety.hazard": (_FALL_ZH, _FALL_EN, (AMBULANCE, POLICE)),
}

# What to do when a request's urgent words describe an emergency, whatever its category:
# code, 中文, English, markers (a trigger word holding one belongs to the guide),
# guidance 中文, English, numbers. "general" takes the urgent words no other guide
# claims, and its numbers are the start page's. Migration 0022 writes the same rows.
EMERGENCY_GUIDES = [
    ("general", "紧急情况", "Emergencies", "",
     "如果有人受伤、被困，或者危险正在发生，请先拨打下面的电话求助；社区也会尽快跟进。",
     ("If someone is hurt or trapped, or the danger is happening now, call one of these numbers first; "
      "the community will follow up as well."), (POLICE, FIRE, AMBULANCE, LIFT)),
    ("gas", "燃气泄漏", "Gas leak", "燃气 煤气 天然气 液化气", _GAS_ZH, _GAS_EN, (FIRE, AMBULANCE)),
    ("fire", "火情", "Fire", "火 烟 爆炸", _FIRE_ZH, _FIRE_EN, (FIRE, AMBULANCE)),
    ("lift", "电梯困人", "Trapped in a lift", "电梯", _LIFT_ZH, _LIFT_EN, (LIFT, AMBULANCE)),
    ("electric", "触电漏电", "Electric shock", "触电 漏电", _SHOCK_ZH, _SHOCK_EN, (AMBULANCE, POWER)),
    ("collapse", "坍塌坠落", "Collapse or falling objects", "塌 坠 掉落", _COLLAPSE_ZH, _COLLAPSE_EN,
     (FIRE, AMBULANCE)),
]


def numbers_of(pairs: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
    """(label, number) pairs as the catalogue stores them."""
    return [{"label": label, "number": number} for label, number in pairs]


# The keywords earlier releases shipped: a category still holding exactly these gets
# the new ones; anything an admin wrote is left alone.
PREVIOUS_KEYWORDS = {
    "repair.water_leak": "漏水 水管 爆管 渗水", "repair.no_water": "停水 没水 水压",
    "repair.power": "停电 没电 跳闸 电路", "repair.heating": "暖气 供暖 不热",
    "repair.gas": "燃气 煤气 漏气 异味", "repair.lift_trapped": "电梯困人 困在电梯",
    "repair.lift": "电梯 故障 停运", "repair.stair_light": "楼道灯 路灯 不亮 照明",
    "repair.door": "单元门 门禁 门锁", "repair.roof": "漏雨 屋顶 防水", "repair.other": "维修 坏了",
    "environment.litter": "垃圾 清运 堆放", "environment.sewage": "下水道 堵塞 污水 反味",
    "environment.greenery": "绿化 树木 草坪", "environment.pests": "老鼠 蟑螂 蚊虫",
    "safety.fire_exit": "消防通道 堵塞 消防", "safety.charging": "飞线 充电 电动车",
    "safety.hazard": "坠物 危险 脱落", "parking.disorder": "乱停 占道 停车", "parking.space": "车位 充电桩",
    "dispute.noise": "噪音 吵闹 扰民", "dispute.other": "纠纷 矛盾 吵架",
    "elderly.help": "老人 独居 帮忙 代买", "elderly.visit": "探访 看望 慰问",
    "suggestion.general": "建议 希望 意见",
}


def ensure_reference_data() -> None:
    """Insert missing tiers and categories; existing rows are left as admins set them.

    A category is created public in Open311 when its group is in PUBLIC_GROUPS; an
    existing one keeps the flag an admin (or migration 0014) gave it.

    Keywords, trigger words and extra fields are filled in only where they are empty
    (or, for keywords, still exactly what an earlier release shipped), so running it
    again on a live database adds what is new without undoing an admin's edits. An
    admin who wants a category never guessed deactivates it rather than emptying it.
    Emergency guidance is given to a category when it is created, and a missing
    emergency guide (by code) is added; neither is touched afterwards.
    """
    tiers = {t.code: t for t in db.session.scalars(select(SlaTier))}
    for code, zh, en, accept, resolve, working, rank in TIERS:
        if code not in tiers:
            tiers[code] = SlaTier(
                code=code, name_zh=zh, name_en=en, accept_minutes=accept,
                resolve_minutes=resolve, working_days=working, rank=rank, trigger_words="",
            )
            db.session.add(tiers[code])
        if not (tiers[code].trigger_words or "").strip() and code in TRIGGER_WORDS:
            tiers[code].trigger_words = TRIGGER_WORDS[code]
    existing = {c.code: c for c in db.session.scalars(select(Category))}
    for order, (code, zh, en, hint_zh, hint_en, tier, children) in enumerate(CATEGORIES):
        group = existing.get(code)
        if group is None:
            group = Category(
                code=code, name_zh=zh, name_en=en, hint_zh=hint_zh, hint_en=hint_en,
                tier=tiers[tier], sort_order=order, public=code in PUBLIC_GROUPS,
            )
            db.session.add(group)
        for child_order, (child_code, czh, cen, ctier, keywords) in enumerate(children):
            child = existing.get(child_code)
            if child is None:
                child = Category(
                    code=child_code, name_zh=czh, name_en=cen, parent=group,
                    tier=tiers[ctier] if ctier else None, keywords="", extra_fields=[],
                    sort_order=child_order, public=code in PUBLIC_GROUPS,
                )
                if child_code in EMERGENCY_CATEGORIES:
                    guidance_zh, guidance_en, numbers = EMERGENCY_CATEGORIES[child_code]
                    child.emergency_guidance_zh, child.emergency_guidance_en = guidance_zh, guidance_en
                    child.emergency_numbers = numbers_of(numbers)
                db.session.add(child)
            if (child.keywords or "").strip() in ("", PREVIOUS_KEYWORDS.get(child_code)):
                child.keywords = keywords
            if not child.extra_fields and child_code in EXTRA_FIELDS:
                child.extra_fields = EXTRA_FIELDS[child_code]
    guides = set(db.session.scalars(select(EmergencyGuide.code)))
    for order, (code, zh, en, markers, guidance_zh, guidance_en, numbers) in enumerate(EMERGENCY_GUIDES):
        if code not in guides:
            db.session.add(EmergencyGuide(code=code, name_zh=zh, name_en=en, markers=markers, guidance_zh=guidance_zh,
                                          guidance_en=guidance_en, numbers=numbers_of(numbers), sort_order=order))
    db.session.flush()
