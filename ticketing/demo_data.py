"""The demo sub-district's people, and the stories its tickets tell.

城关街道 has two communities, 大寺社区 and 南关社区, three grids each. 锦华苑 and
南关新村 are managed by a 红色物业 company (WY01), 翠园小区 by an ordinary one
(WY02); the 兰香苑 courtyard and the 家属院 are self-managed, so the community is
their fallback handler (社区兜底). The places, companies and teams are the workbook
`demo_places/places.xlsx` and its boundaries `demo_places/grids.geojson`, loaded
through the places importer; the staff, their scopes and duty rosters are its 人员
sheet, loaded through the staff importer (every grid, company and team has someone on
call at every hour, so a demo ticket is routed whenever it is filed). `STAFF` below
lists the same people with their titles for the logins table; `ticketing/demo.py`
turns these tables into the rest.
"""
from __future__ import annotations

from dataclasses import dataclass

DEMO_PASSWORD = "minhu-demo"
STREET_CODE = "CGJD"


@dataclass(frozen=True)
class StaffSpec:
    """A demo account; its scope is a community code, grid codes, a company or team code."""

    username: str
    name: str
    phone: str
    role: str
    community: str | None = None
    grids: tuple[str, ...] = ()
    company: str | None = None
    team: str | None = None
    title: str = ""


STAFF: tuple[StaffSpec, ...] = (
    StaffSpec("admin", "刘志强", "13903751001", "admin", title="系统管理员"),
    StaffSpec("supervisor", "张秀兰", "13903751002", "supervisor", title="街道民呼必应中心主任"),
    StaffSpec("secretary1", "王丽娟", "13903751011", "supervisor", "CGJD-DS", title="大寺社区党委书记"),
    StaffSpec("director1", "陈建军", "13903751012", "supervisor", "CGJD-DS", title="大寺社区居委会主任"),
    StaffSpec("secretary2", "赵红梅", "13903751021", "supervisor", "CGJD-NG", title="南关社区党委书记"),
    StaffSpec("director2", "孙国庆", "13903751022", "supervisor", "CGJD-NG", title="南关社区居委会主任"),
    StaffSpec("hall", "吴婷", "13903751003", "dispatcher", title="街道便民服务大厅"),
    StaffSpec("dispatcher1", "李静", "13903751013", "dispatcher", "CGJD-DS", title="大寺社区民呼必应工作站"),
    StaffSpec("dispatcher2", "周敏", "13903751023", "dispatcher", "CGJD-NG", title="南关社区民呼必应工作站"),
    StaffSpec("grid1", "马晓东", "13937501101", "grid_worker", grids=("DS-01",)),
    StaffSpec("grid2", "郑伟", "13937501102", "grid_worker", grids=("DS-02",)),
    StaffSpec("grid3", "黄丽", "13937501103", "grid_worker", grids=("DS-03",)),
    StaffSpec("grid4", "高鹏", "13937501104", "grid_worker", grids=("NG-01",)),
    StaffSpec("grid5", "杜娟", "13937501105", "grid_worker", grids=("NG-02",)),
    StaffSpec("grid6", "许磊", "13937501106", "grid_worker", grids=("NG-03",)),
    StaffSpec("property1", "徐建华", "13837502201", "property_staff", company="WY01", title="维修班长"),
    StaffSpec("property2", "何芳", "13837502202", "property_staff", company="WY01", title="物业客服员"),
    StaffSpec("property3", "宋志刚", "13837502203", "property_staff", company="WY02", title="维修工"),
    StaffSpec("volunteer1", "钱桂英", "13637503301", "volunteer", team="DS-ZYD", title="退休教师"),
    StaffSpec("volunteer2", "冯晓燕", "13637503302", "volunteer", team="DS-ZYD"),
    StaffSpec("volunteer3", "曹德明", "13637503303", "volunteer", team="NG-ZYD", title="老党员"),
    StaffSpec("mediator1", "罗振华", "13637503304", "volunteer", team="DS-TJD", title="人民调解员"),
    StaffSpec("mediator2", "邓秀芝", "13637503305", "volunteer", team="NG-TJD", title="人民调解员"),
)


@dataclass(frozen=True)
class Story:
    """A kind of request: category, where it happens, what residents say, what was done.

    `place` is "managed" (a complex with a property company), "self" (self-managed)
    or "any". The description may use {c} complex, {b} building, {u} unit number.
    """

    key: str
    category: str
    place: str
    description: str
    result: str
    hold: str = ""
    channel: str | None = None


STORIES: tuple[Story, ...] = (
    Story("stair_light", "repair.stair_light", "any", "{b}{u}单元楼道灯不亮好几天了，晚上老人上下楼看不见台阶，怕摔着。", "已更换声控灯泡3个，逐层试亮正常。"),
    Story("burst_pipe", "repair.water_leak", "any", "{b}地下室水管爆裂，水都漫到楼道里了，请赶紧派人关阀门！", "已关闭总阀，更换破裂管段约1.5米，恢复供水。"),
    Story("no_water", "repair.no_water", "managed", "今天早上起来就没水了，{b}整栋楼都停水，也没看到停水通知。", "二次供水泵房水泵故障，已抢修恢复供水，并在单元门张贴情况说明。"),
    Story("tripping", "repair.power", "self", "{b}{u}单元楼道总闸老是跳闸，一晚上停了三次电。", "线路老化短路，已联系供电所更换空开并整理楼道飞线。"),
    Story("heating", "repair.heating", "managed", "暖气片一直不热，屋里才十五度，家里有八十多岁的老人。", "供热公司上门排气并清洗过滤器，室温恢复到20度。", "需等供热公司统一排气，已约定周四上门。"),
    Story("lift", "repair.lift", "managed", "{b}电梯停在6楼不动了，显示故障代码，老人上下楼很不方便。", "已更换电梯主板，经维保单位检测运行正常。", "电梯主板需厂家调货，预计3天到货。"),
    Story("door", "repair.door", "managed", "{b}{u}单元门禁坏了，门一直关不上，陌生人随便进出。", "已更换门禁电磁锁，门禁卡使用正常。"),
    Story("roof", "repair.roof", "self", "顶楼屋顶漏雨，一下雨卧室墙面就往下渗水，墙皮都泡起来了。", "经业主表决使用维修资金，已完成屋面防水层修补。", "屋面防水需动用维修资金，待业主表决。"),
    Story("gas", "repair.gas", "any", "{b}{u}单元楼道里燃气味很大，不知道谁家漏气了，请快来看看！", "已联系燃气公司抢修，系3楼住户胶管老化，已更换，复查无泄漏。"),
    Story("lift_trapped", "repair.lift_trapped", "managed", "{b}电梯困人！家里老人被困在电梯里，卡在4楼和5楼之间。", "维保人员12分钟到场，已安全救出被困人员，电梯停运检修。"),
    Story("manhole", "repair.other", "self", "院子里的下水井盖松动了，踩上去直晃，孩子放学经过很危险。", "已更换井盖并加固。"),
    Story("garage_light", "repair.stair_light", "managed", "地下车库一半的灯都坏了，晚上停车黑乎乎的。", "已更换LED灯管14根。"),
    Story("water_cut", "repair.no_water", "self", "家属院整个院子停水一天了，老人做饭喝水都成问题。", "主管网阀门损坏，已协调自来水公司抢修，抢修期间送桶装水到户。"),
    Story("sparks", "repair.power", "managed", "{b}{u}单元楼道配电箱冒火花，还有焦糊味。", "已断电检修，更换烧损的接线端子。"),
    Story("gate", "repair.door", "self", "院子大门的铁门合页坏了，关不上，晚上不安全。", "已焊接修复大门合页。"),
    Story("litter", "environment.litter", "self", "院里垃圾三天没人清运了，垃圾桶都满出来了，味道很大。", "已协调环卫所加派清运车，明确每天上午清运一次。", "环卫所清运车辆检修，已申请临时调配。"),
    Story("rubble", "environment.litter", "any", "{c}北门口有人乱倒装修垃圾，堆了一大堆。", "已联系装修住户清运，张贴装修垃圾投放提示。"),
    Story("sewage", "environment.sewage", "self", "院里下水道堵了，污水冒到路面上，味道特别大。", "已组织疏通下水主管道，清理淤泥。"),
    Story("tree", "environment.greenery", "any", "{b}楼前的大树枝子伸到三楼窗户上了，刮风时直敲玻璃，担心砸下来。", "已联系园林所修剪树枝。", "修剪高大乔木需园林部门审批，已报送。"),
    Story("rats", "environment.pests", "self", "最近院子里老鼠特别多，晚上在垃圾堆里乱窜。", "已投放灭鼠药并设置警示标识，一周后复查。", "需等灭鼠公司统一投药。"),
    Story("vegetables", "environment.greenery", "managed", "小区绿地被人开荒种了菜，还泼粪水，臭味很大。", "已劝导住户清除菜地，恢复绿化。"),
    Story("fire_exit", "safety.fire_exit", "any", "{c}的消防通道被电动车和私家车堵得死死的，消防车根本进不来。", "已联系车主挪车，设置禁停标识并重新划线。"),
    Story("flying_wire", "safety.charging", "self", "{b}有人从三楼窗户扯电线下来给电动车充电，太危险了。", "已劝导住户拆除飞线，引导到院内新建的充电车棚充电。"),
    Story("tiles", "safety.hazard", "any", "{b}外墙瓷砖脱落，掉在楼下人行道上，差点砸到人。", "已拉设警戒线，组织施工队清除松动瓷砖。"),
    Story("parking", "parking.disorder", "any", "{c}门口天天有外来车辆乱停，早上送孩子上学车都开不出去。", "已协调交警中队设置禁停标志，门岗加强管理。"),
    Story("zombie_car", "parking.disorder", "self", "院门口有辆僵尸车停了半年多，轮胎都瘪了，一直占着位置。", "已联系车主挪走。"),
    Story("charger", "parking.space", "managed", "{c}能不能增加电动汽车充电桩？现在充电要跑很远。", "已纳入老旧小区改造提升项目，计划新建充电桩8个。"),
    Story("jumping", "dispute.noise", "any", "楼上住户每天晚上十一点以后还在跳绳、拖椅子，老人孩子都睡不好，沟通过没用。", "调解队上门调解，楼上住户同意晚十点后不再运动并铺设地垫。"),
    Story("leak_dispute", "dispute.other", "any", "楼上卫生间漏水到我家，天花板一直滴水，楼上说不是他家的问题，吵了好几次了。", "调解队联合维修人员查明漏点在楼上防水层，双方协商由楼上修复并承担涂刷费用。", "需等双方都在家时现场查看漏点。"),
    Story("stairwell_junk", "dispute.other", "self", "邻居在楼道里堆放杂物和纸箱，说了好几次也不清理，还吵起来了。", "调解员上门沟通，邻居已清理楼道杂物。"),
    Story("square_dance", "dispute.noise", "managed", "广场舞音响声音太大，每天早上六点就开始放，影响休息。", "调解队与舞蹈队协商，调整为早八点后并降低音量。"),
    Story("medicine", "elderly.help", "any", "我母亲82岁独居，腿脚不方便，需要有人帮忙代买降压药。", "志愿者已到药店代买降压药送到家中，并留下联系电话。"),
    Story("bulb", "elderly.help", "any", "独居老人家里灯泡坏了，自己够不着，想请人帮忙换一下。", "志愿者上门更换灯泡，顺便检查了燃气灶开关。"),
    Story("visit", "elderly.visit", "self", "{b}的李奶奶子女都在外地，这几天没见她下楼，麻烦社区去看看。", "志愿者与网格员上门探访，老人身体无恙，已登记为重点关爱对象，每周探访一次。"),
    Story("meals", "elderly.help", "managed", "老人腿脚不便，想申请助餐服务，幸福食堂能不能送餐上门？", "已登记助餐需求，志愿者每天中午送餐上门。"),
    Story("hospital", "elderly.help", "any", "老伴住院了，家里只有我一个人，想请志愿者帮忙去医院送几次饭。", "志愿服务队排班送饭一周，已回访。"),
    Story("benches", "suggestion.general", "any", "建议在院子里加装几把休息椅，老人遛弯累了没地方坐。", "已纳入微更新项目，在院内增设休闲座椅6组。"),
    Story("elevator", "suggestion.general", "self", "我们单元7层楼住的都是老人，想申请加装电梯，需要怎么办理？", "网格员已上门讲解加装电梯政策和流程，协助发放意见征询表。"),
    Story("patrol_exit", "safety.fire_exit", "any", "巡查发现{c}{b}东侧消防通道被杂物堆占约20米，需清理。", "已组织清理杂物，消防通道恢复畅通。", channel="patrol"),
    Story("patrol_rubble", "environment.litter", "any", "巡查发现{c}西南角有建筑垃圾堆放，未覆盖防尘网。", "已督促施工方清运并覆盖防尘网。", channel="patrol"),
    Story("patrol_steps", "repair.other", "any", "巡查发现{b}单元门口台阶破损，雨天容易滑倒。", "已修补台阶并加装防滑条。", channel="patrol"),
    Story("group_lights", "repair.stair_light", "any", "【业主群】{b}{u}单元3楼到5楼楼道灯都不亮了，群里好几个邻居都在说。", "已逐层更换灯泡，在群里反馈维修结果。", channel="wechat_group"),
    Story("group_mosquitoes", "environment.pests", "any", "【业主群】最近院里蚊子特别多，绿化带积水没人管。", "已清理绿化带积水并喷洒消杀药剂。", channel="wechat_group"),
)

# (category, description, address text or "", reason for rejecting)
REJECTED: tuple[tuple[str, str, str, str], ...] = (
    ("suggestion.general", "请问社保卡丢了怎么补办？", "", "属于政策咨询，已电话告知到街道便民服务大厅社保窗口办理，不作工单处理。"),
    ("repair.stair_light", "人民路和建设路交叉口的路灯不亮，晚上过马路很危险。", "人民路与建设路交叉口", "属市政道路照明，不在社区辖区，已告知拨打12345城市管理热线。"),
    ("parking.disorder", "测试", "", "无效信息（测试提交）。"),
)

# (story key of the open ticket, what the neighbour who files the duplicate says)
DUPLICATES: tuple[tuple[str, str], ...] = (
    ("stair_light", "{b}{u}单元的楼道灯到现在还没修好，晚上黑漆漆的，邻居前两天也报过。"),
    ("tree", "{b}门口那棵大树的树枝快碰到我家窗户了，能不能来修剪一下？"),
)

RETURN_NOTES = ("经现场查看，属于物业维修范围，请转物业公司处理。",)
WORK_NOTES: tuple[tuple[str, bool], ...] = (
    ("已电话联系住户，约好明天上午上门查看。", False),
    ("已联系维修师傅，预计明天上午到场。", True),
    ("材料已采购，正在安排施工。", True),
    ("住户白天上班，约了周末上门。", False),
)
SUPERVISE_NOTE = "该工单已超期，请今天下班前反馈办理进度。（督办）"
REOPEN_NOTES = ("修好没两天又不行了，麻烦再来看看。", "问题还在，没有彻底解决。")
WITHDRAW_NOTES = ("已经自己修好了，不用来了，谢谢。", "邻居帮忙处理好了。")
RATING_COMMENTS: dict[str, tuple[str, ...]] = {
    "satisfied": ("师傅来得很快，修得也好，点赞！", "网格员很负责，谢谢社区！", "", "处理及时，很满意。", "服务很贴心，谢谢！"),
    "basic": ("问题解决了，就是等得有点久。", "基本解决了，希望以后能定期检查。"),
    "unsatisfied": ("修完第二天又坏了。", "只是临时处理了一下，没有彻底解决。", "打了好几次电话才有人来。"),
}

SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗"
GIVEN_NAMES = (
    "秀英", "桂兰", "建国", "志强", "丽华", "淑芬", "德明", "玉珍", "国华", "海燕",
    "红霞", "建华", "凤英", "文斌", "晓燕", "俊杰", "玉兰", "长顺", "春梅", "宝山",
)
PHONE_PREFIXES = ("139", "138", "137", "136", "135", "158", "159", "186", "188", "151", "131", "177")
MERGE_NOTE = "与邻居此前反映的是同一问题，已合并到原工单统一办理。"
