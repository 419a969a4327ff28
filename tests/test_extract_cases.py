"""Hand-labelled cases, worded differently from the dev corpus (other hospitals, people,
phrasings, voice transcripts without punctuation).  They guard the rules against
over-fitting to notes-dev.jsonl.  Labels follow corpus/README.md: ``stage`` lists the
acceptable answers, ``na`` is None (no action), "any" (an action, date not graded) or the
due date, lists compare as sets.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from nlp.extract import Extractor
from nlp.lexicon import load_lexicon

MON = "2026-11-23T09:30:00+08:00"
WED = "2026-11-25T10:15:00+08:00"
FRI = "2026-11-27T11:00:00+08:00"
TUE = "2026-11-24T14:00:00+08:00"
THU = "2026-11-26T16:40:00+08:00"
NONE: list[Any] = [None]


def case(cid: str, now: str, text: str, *, stage: list[Any] = NONE, concerns: tuple[str, ...] = (),
         na: Any = None, contacts: tuple[str, ...] = (), account: str | None = None,
         departments: tuple[str, ...] = (), amount: int | None = None, competitors: tuple[str, ...] = (),
         cues: tuple[str, ...] = (), due_at: str | None = None) -> Any:
    expect = dict(stage=stage, concerns=set(concerns), na=na, contacts=set(contacts), account=account,
                  departments=set(departments), amount=amount, competitors=set(competitors), cues=set(cues),
                  due_at=due_at)
    return pytest.param(now, text, expect, id=cid)


CASES = [
    case("c01", MON, "湘雅二院心外科欧阳主任说明年要新建一间导管室，让我们下周五前出个初步方案。",
         stage=["needs"], na="2026-12-04", contacts=("欧阳主任",), account="湘雅二院", departments=("心外科", "导管室")),
    case("c02", MON, "浙大一院采购中心通知下周二开标，我们要提前准备好投标文件。",
         stage=["tender"], na="any", account="浙大一院", departments=("采购中心",)),
    case("c03", MON, "嗯那个今天去协和医院见了麻醉科的冯老师然后她说科里的监护仪用了八年了想换一批新的",
         stage=["needs"], contacts=("冯老师",), account="协和医院", departments=("麻醉科",)),
    case("c04", MON, "县人民医院设备科赵科长回复预算已经批下来了，下个月10号前要把配置清单报上去",
         stage=["needs", "tender", None], na="2026-12-10", contacts=("赵科长",), account="县人民医院",
         departments=("设备科",)),
    case("c05", WED, "GE和西门子都在跟这个CT项目，主任比较倾向进口品牌，我们价格有优势，周四带专家过去做技术交流。",
         stage=["demo", None], concerns=("competitor",), na="2026-11-26", competitors=("GE", "西门子")),
    case("c06", MON, "收到👍"),
    case("c07", MON, "辛苦了，谢谢领导"),
    case("c08", MON, "省妇幼的黄护士长说输液泵经常报警，科室对售后不太满意，明天上午带工程师过去处理。",
         concerns=("product", "service"), na="2026-11-24", contacts=("黄护士长",), account="省妇幼",
         due_at="2026-11-24T09:00:00+08:00"),
    case("c09", WED, "李副院长拍板了，合同下周一签，金额三百五十万。",
         stage=["contract"], na="2026-11-30", contacts=("李副院长",), amount=3500000),
    case("c10", MON, "刘总那边说价格还能再谈，让我们先把报价单发过去，越快越好。",
         stage=["negotiation"], na="any", contacts=("刘总",), cues=("price_flexible", "urgent")),
    case("c11", FRI, "单子被美敦力抢走了，对方报价比我们低了差不多20%。",
         stage=["lost"], concerns=("competitor", "price"), competitors=("美敦力",)),
    case("c12", MON, "中心医院ICU的重症呼吸机项目，标书下周三截止递交，参数里有两条我们不满足，得找厂家确认能不能改。",
         stage=["tender"], concerns=("product",), na="2026-12-02", account="中心医院", departments=("ICU",)),
    case("c13", WED, "王医生反馈样机用了一周效果很好，想再延长试用两周。",
         stage=["trial"], contacts=("王医生",)),
    case("c14", MON, "下周二在市中医院做一场腔镜新品的学术推广会，目前已经邀请了十二位医生。",
         stage=["demo"], na="2026-12-01", account="市中医院"),
    case("c15", MON, "吴处长说今年的钱都花完了，项目只能放到明年再说。",
         concerns=("budget",), contacts=("吴处长",)),
    case("c16", MON, "仁济医院泌尿外科的高主任对我们的钬激光很感兴趣，约了下下周一过去演示。",
         stage=["needs", "demo"], na="2026-12-07", contacts=("高主任",), account="仁济医院",
         departments=("泌尿外科",)),
    case("c17", FRI, "那个发票已经开出去了对方说年前能把尾款结清", stage=["payment"]),
    case("c18", MON, "设备已经送到检验科了，下周三安排工程师上门安装调试，顺便给老师们做个操作培训。",
         stage=["delivery"], na="2026-12-02", departments=("检验科",)),
    case("c19", WED, "鼓楼医院的回款拖了三个月了，财务说要等院长签字，我这周五再去催一下。",
         stage=["payment"], concerns=("process",), na="2026-11-27", account="鼓楼医院"),
    case("c20", MON, "客户说我们的交货期太长了，奥林巴斯能做到两周到货。",
         concerns=("delivery", "competitor"), competitors=("奥林巴斯",)),
    case("c21", WED, "周一上午去二院找信息科王科长对接接口的事",
         na="2026-11-30", contacts=("王科长",), account="二院", departments=("信息科",),
         due_at="2026-11-30T09:00:00+08:00"),
    case("c22", MON, "第一次拜访市二院的骨科，跟孙主任交换了名片，下周再约时间详细聊。",
         stage=["first_contact"], na="any", contacts=("孙主任",), account="市二院", departments=("骨科",)),
    case("c23", MON, "价格方面主任没意见，主要担心我们的注册证还没下来，周三前把受理通知书发给他看看。",
         concerns=("compliance",), na="2026-11-25"),
    case("c24", MON, "不担心交期，关键是售后，主任希望我们能承诺四小时响应。", concerns=("service",)),
    case("c25", MON, "开立和理邦的彩超都进来试过了，科室还是觉得我们的图像更清楚。",
         stage=[None, "trial"], concerns=("competitor",), competitors=("开立", "理邦")),
    case("c26", MON, "下周开立发票给华西医院，月底前催款。",
         stage=["payment"], na="2026-11-30", account="华西医院"),
    case("c27", MON, "省肿瘤医院放疗科的方主任说直线加速器的招标参数已经定了，12月15号挂网。",
         stage=["tender"], contacts=("方主任",), account="省肿瘤医院", departments=("放疗科",)),
    case("c28", MON, "跟进了一下，院办说采购论证会推迟到下个月中旬，等通知。",
         stage=["tender"], concerns=("process",), departments=("院办",)),
    case("c29", MON, "今天拜访了肾内科，血透机现在用的是费森尤斯，护士长说操作习惯了不太想换。",
         stage=[None, "first_contact"], concerns=("competitor",), departments=("肾内科",),
         competitors=("费森尤斯",)),
    case("c30", FRI, "那个就是陈主任说他们这个月底之前要把参数报到设备处然后让我们配合提供技术资料",
         stage=["tender", None, "needs"], na="any", contacts=("陈主任",), departments=("设备处",)),
    case("c31", WED, "设备科说这次的中标公示结束了，下周签合同，合同金额68万。",
         stage=["contract"], na="any", departments=("设备科",), amount=680000),
    case("c32", MON, "胸痛中心刚评上，心内科的林主任想再要两套心电监护",
         stage=["needs"], contacts=("林主任",), departments=("胸痛中心", "心内科")),
    case("c33", WED, "邵逸夫的采购办跟我确认了，预算80万，下周三之前提交报价。",
         stage=["negotiation", "needs", "tender"], na="2026-12-02", account="邵逸夫", departments=("采购办",),
         amount=800000),
    case("c34", MON, "客户嫌贵，说隔壁医院买的迈瑞便宜三成，我申请一下特价，后天给答复。",
         stage=[None, "negotiation"], concerns=("price", "competitor"), na="2026-11-25", competitors=("迈瑞",)),
    case("c36", MON, "合同已经回传了，这周四安排发货，预计下周一到货。",
         stage=["contract", "delivery"], na="2026-11-26"),
    case("c37", MON, "验收报告签完字了，下周一开始走付款流程。",
         stage=["delivery", "payment"], concerns=("process",)),
    case("c38", MON, "南京市第一医院的蒋主任下周出差，回来后再约他看样机。",
         stage=["demo", "trial", None], na="any", contacts=("蒋主任",), account="南京市第一医院"),
    case("c39", FRI, "中标了！！！南方医院的DSA，总价一千二百万", stage=["contract"], account="南方医院",
         amount=12000000),
    case("c40", MON, "昨天去了趟人民医院，没见到人，明天再跑一趟。", na="2026-11-24", account="人民医院"),
    case("c41", MON, "东软的人也在跑这个项目，听说给了很低的折扣。",
         stage=[None, "negotiation"], concerns=("competitor", "price"), competitors=("东软",)),
    case("c42", MON, "乐普的支架集采中标了，我们这次没进，这家医院的量要掉了。",
         stage=["lost"], concerns=("competitor",), competitors=("乐普",)),
    case("c43", MON, "科室的老主任退休了，新来的谢主任以前用惯了强生的吻合器。",
         concerns=("relationship", "competitor"), contacts=("谢主任",), competitors=("强生",)),
    case("c44", MON, "上午在血透室做了演示，下午去财务处对账，明天把对账单盖章寄回。",
         stage=["demo", "payment"], na="2026-11-23", departments=("血透室", "财务处")),
    case("c45", MON, "明天下午三点半跟设备处谭处长开视频会，聊一下付款方式。",
         stage=["negotiation", None], na="2026-11-24", contacts=("谭处长",), departments=("设备处",),
         due_at="2026-11-24T15:30:00+08:00"),
    case("c46", MON, "需求还不明确，主任只是随口问了问价格。"),
    case("c47", MON, "预算没问题，就是审批流程比较慢，估计要拖到年后。", concerns=("process",)),
    case("c48", MON, "嗯嗯好的 明白"),
    case("c49", MON, "周末愉快"),
    case("c50", FRI, "好的，周三前发给您", na="2026-12-02"),
    case("c51", MON, "嘉兴市妇幼保健院的采购科长姓卢，下周二过去拜访。",
         na="2026-12-01", account="嘉兴市妇幼保健院", departments=("采购科",)),
    case("c52", MON, "介入中心的陆主任让我们尽快把球囊的临床文献整理一份发过去",
         concerns=("clinical",), na="any", contacts=("陆主任",), departments=("介入中心",), cues=("urgent",)),
    case("c53", MON, "医院这个项目取消了，上面说暂时不采购了。", stage=["lost"]),
    case("c54", MON, "西门子的MRI报价比我们高，但客户还是倾向他们，说品牌认可度高。",
         stage=["negotiation", None], concerns=("competitor",), competitors=("西门子",)),
    case("c55", FRI, "今晚把投标保证金打过去，明天上午开标", stage=["tender"], na="2026-11-27",
         due_at="2026-11-27T20:00:00+08:00"),
    case("c56", WED, "周三跟李院长汇报了方案，他让我们下周一前再优化一版。",
         stage=[None, "demo"], na="2026-11-30", contacts=("李院长",)),
    case("c57", MON, "市一院的二代导管试用反馈不错，护士长说比波科的好用",
         stage=["trial"], concerns=("competitor",), account="市一院", competitors=("波科",)),
    case("c58", MON, "因为疫情影响工厂停产，交货可能要延迟一个月，要跟客户解释一下", concerns=("delivery",), na="any"),
    case("c59", MON, "下个月15号之前必须把资质文件交到招标办，很急",
         stage=["tender", None], concerns=("compliance",), na="2026-12-15", departments=("招标办",),
         cues=("urgent",)),
    case("c60", MON, "十一月二十八号下午两点在科室做操作培训", stage=["delivery"], na="2026-11-28",
         due_at="2026-11-28T14:00:00+08:00"),
    case("c61", MON, "今天上午去了趟中山医院，刘主任不在，改天再约。", na="any", contacts=("刘主任",),
         account="中山医院"),
    case("c62", MON, "刚签了试用协议，样机明天送到超声科", stage=["trial"], na="2026-11-24",
         departments=("超声科",)),
    case("c63", MON, "老板，华东区的季度回款目标还差200万", stage=["payment"], amount=2000000),
    case("c64", MON, "宋主任问能不能把价格降到90万以内，我说要回去请示领导。",
         stage=["negotiation"], concerns=("price",), na="any", contacts=("宋主任",), amount=900000),
    case("c65", MON, "华山医院和长海医院两家都在谈，华山的进度快一些。", stage=[None, "negotiation"],
         account="华山医院"),
    case("c67", MON, "科里想上一台ECMO，让我先摸一下预算情况，下周给主任回个话。", stage=["needs"], na="any"),
    case("c68", MON, "客户对我们的售后很满意，打算明年把另外两个院区的也换成我们的。", stage=["needs", None]),
    case("c69", MON, "今天去了苏州大学附属第一医院心内科，跟钟主任聊了二十分钟，他对我们的封堵器很感兴趣。",
         stage=["needs", "first_contact"], contacts=("钟主任",), account="苏州大学附属第一医院",
         departments=("心内科",)),
    case("c70", WED, "下周三前务必把授权书原件寄给设备科的贺科长，他们催得很紧",
         concerns=("compliance",), na="2026-12-02", contacts=("贺科长",), departments=("设备科",),
         cues=("urgent",)),
    case("c71", MON, "呃今天在鼓楼医院跟那个骨科的严主任见了一面他说髓内钉这块现在用的是大博的价格比我们便宜不少"
         "但是对我们的产品挺认可的然后让我下周二再带样品过去",
         stage=[None, "trial", "demo"], concerns=("competitor", "price"), na="2026-12-01", contacts=("严主任",),
         account="鼓楼医院", departments=("骨科",), competitors=("大博",)),
    case("c72", MON, "先这样吧，有进展再跟你说"),
    case("c73", MON, "这个项目总投资2个亿，设备部分大概5000W", amount=200000000),
    case("c74", MON, "主任说下周去北京开会，回来再说"),
    case("c75", MON, "竞品主要是飞利浦，我们的优势是价格", concerns=("competitor",), competitors=("飞利浦",)),
    case("c76", WED, "嗯就是说那个张主任那边嗯价格不是问题主要是担心我们的CT售后跟不上然后我周五前把售后方案发给他",
         concerns=("service",), na="2026-11-27", contacts=("张主任",)),
    case("c77", MON, "司马主任刚调到市中心医院当副院长，之前的关系要重新建立。",
         concerns=("relationship",), contacts=("司马主任",), account="市中心医院"),
    case("c78", FRI, "今天和武汉同济的信息科沟通了对接方案，没有提到任何竞品，下下周三之前给他们出一版测试报告",
         na="2026-12-09", account="武汉同济", departments=("信息科",)),
    case("c79", MON, "赵工说探头的兼容性没问题，下周一可以装机", stage=["delivery"], na="any", contacts=("赵工",)),
    case("c80", MON, "预计12月初能回款一百五十万左右", stage=["payment"], amount=1500000),
    # second batch, written blind before running the extractor on it
    case("d01", MON, "协和的采购说下周四开论证会，我们周三前要把技术参数表和报价都准备好。",
         stage=["tender"], concerns=("process",), na="2026-11-25", account="协和"),
    case("d02", MON, "县医院的彩超装好了，下周一给科室做操作培训。", stage=["delivery"], na="2026-11-30",
         account="县医院"),
    case("d03", MON, "詹主任觉得我们的导丝太硬，手感不如泰尔茂的。", concerns=("product", "competitor"),
         contacts=("詹主任",), competitors=("泰尔茂",)),
    case("d04", MON, "今年的设备预算还没下来，主任让我们先等等。", concerns=("budget",)),
    case("d05", MON, "刚和心脏中心的方主任吃了个饭，聊得很投机，他透露明年要上两台ECMO。", stage=["needs"],
         contacts=("方主任",), departments=("心脏中心",)),
    case("d06", MON, "下午三点到市三院设备科送资料", na="2026-11-23", account="市三院", departments=("设备科",),
         due_at="2026-11-23T15:00:00+08:00"),
    case("d07", MON, "报价已经提交了，客户反馈比预期高了10万左右，让我们再想想办法。", stage=["negotiation"],
         concerns=("price",), na="any", amount=100000),
    case("d08", MON, "周院长明确说了，必须要有三甲医院的使用案例才考虑。", concerns=("clinical",), contacts=("周院长",)),
    case("d09", MON, "病理科想要一台全自动染色机，预算大概在四十万左右，让我月底前报个价。", stage=["needs"],
         na="2026-11-30", departments=("病理科",), amount=400000),
    case("d10", MON, "合同签了但是首付款还没到账，财务说等院长回来签字。", stage=["contract", "payment"],
         concerns=("process",)),
    case("d11", MON, "雅培的代理商在压价，主任问我们能不能跟。", stage=["negotiation", None],
         concerns=("competitor", "price"), competitors=("雅培",)),
    case("d12", MON, "中山大学附属第一医院的招标结果出来了，我们第二名，没中。", stage=["lost"],
         account="中山大学附属第一医院"),
    case("d13", MON, "老客户了，下个月初去回访一次顺便收集一下使用反馈", na="any"),
    case("d14", MON, "后天上午十点院长办公会讨论我们的项目，今天把汇报材料准备好。", stage=["tender", None],
         concerns=("process",), na="2026-11-23"),
    case("d15", MON, "呃王老师说这周内给我回复要不要做试用", stage=["trial", None], contacts=("王老师",)),
    case("d16", MON, "威高骨科的人天天在科里转，我们得加快进度，这周五前把方案给到主任。", concerns=("competitor",),
         na="2026-11-27", competitors=("威高骨科",), cues=("urgent",)),
    case("d18", MON, "审批走完了，设备下周到货，预计12月10号前完成验收", stage=["delivery"]),
    case("d19", MON, "欧阳院长对价格比较敏感，希望能打个九折", stage=["negotiation"], concerns=("price",),
         contacts=("欧阳院长",)),
    case("d20", MON, "这周四下午和信息中心开需求沟通会", stage=["needs", None], na="2026-11-26",
         departments=("信息中心",), due_at="2026-11-26T14:00:00+08:00"),
    case("d21", MON, "江苏省人民医院心内科的导管室要扩建，需要三台DSA，下个月出可研报告", stage=["needs"],
         account="江苏省人民医院", departments=("心内科", "导管室")),
    case("d22", MON, "东方医院的蔡主任下个月退休，接班的还没定，项目可能要缓一缓。", concerns=("relationship",),
         contacts=("蔡主任",), account="东方医院"),
    case("d23", MON, "明天出发去成都参加CMEF，周五回来", na="2026-11-24"),
    case("d25", MON, "跟刘主任约好了下周三上午十点去科室演示新的超声刀", stage=["demo"], na="2026-12-02",
         contacts=("刘主任",), due_at="2026-12-02T10:00:00+08:00"),
    case("d26", MON, "福建省立医院放射科说CT球管老出问题，想看看我们的维保方案", stage=[None, "needs"],
         concerns=("product", "service"), account="福建省立医院", departments=("放射科",)),
    case("d27", MON, "说实话这单希望不大，对方更倾向联影，价格上我们也没优势", concerns=("competitor", "price"),
         competitors=("联影",)),
    case("d28", MON, "下周一前把三类证和厂家授权寄到医院", concerns=("compliance",), na="2026-11-30"),
    case("d29", MON, "麻醉科主任说这个月底之前会给我们答复是否试用", stage=["trial", None], departments=("麻醉科",)),
    # third batch: the dev situations paraphrased (other names, hospitals and wording), written blind
    case("p01", MON, "王主任透露下月要挂网招标，我们主推二代导管，价格方面有商量余地。",
         stage=["tender"], concerns=("product",), contacts=("王主任",), cues=("price_flexible",)),
    case("p02", MON, "上午在仁济医院设备科给科长们演示了产品，孔科长想要一份临床使用报告，我周三之前发给她。",
         stage=["demo"], concerns=("clinical",), na="2026-11-25", contacts=("孔科长",), account="仁济医院",
         departments=("设备科",)),
    case("p03", MON, "卢院长嫌我们的报价太高，说比飞利浦贵出一截，下周二前把配置和价格对比发过去。",
         stage=["negotiation"], concerns=("price","competitor"), na="2026-12-01", contacts=("卢院长",),
         competitors=("飞利浦",)),
    case("p04", WED, "市二院呼吸科的秦主任今天刚加了微信，简单聊了几句，他对我们的呼吸机挺感兴趣，约好下周四去科里拜访。",
         stage=["first_contact"], na="2026-12-03", contacts=("秦主任",), account="市二院", departments=("呼吸科",)),
    case("p05", THU, "长海医院的合同今天盖完章了，合同额九十五万，下周安排发货。", stage=["contract"], na="any", account="长海医院", amount=950000),
    case("p06", MON, "齐鲁医院检验科的发票上周已经开了，财务答应月底之前付款，我到时候再去跟一下。",
         stage=["payment"], na="any", account="齐鲁医院", departments=("检验科",)),
    case("p07", TUE, "市中心医院眼科这单没拿下，客户最终选了蔡司，他们报价比我们便宜很多。",
         stage=["lost"], concerns=("competitor","price"), account="市中心医院", departments=("眼科",), competitors=("蔡司",)),
    case("p08", MON, "财务处的曹处长说今年没有预算了，要等明年的资金到位才能采购。", concerns=("budget",), contacts=("曹处长",), departments=("财务处",)),
    case("p09", MON, "超声科邓主任担心我们设备的图像质量，想参考一下其他医院的使用案例，明天把案例资料发给他。",
         stage=[None,"needs","demo"], concerns=("product","clinical"), na="2026-11-24", contacts=("邓主任",),
         departments=("超声科",)),
    case("p10", WED, "华西医院消化内科的试用协议已经签了，试用期两个月，下周一把三套样机送过去。",
         stage=["trial"], na="2026-11-30", account="华西医院", departments=("消化内科",)),
    case("p11", TUE, "投标文件递交完毕，12月10号开标，我提前两天去现场。竞争对手有史赛克和施乐辉。",
         stage=["tender"], concerns=("competitor",), na="2026-12-08", competitors=("史赛克","施乐辉")),
    case("p12", THU, "设备处的韦处长说我们的经营许可证快到期了，让我们补材料，一周内把新证寄过去。",
         concerns=("compliance",), na="2026-12-03", contacts=("韦处长",), departments=("设备处",)),
    case("p13", MON, "跟医务处沟通过了，这个项目要上院长办公会，最快也要下个月底，流程卡住了。",
         stage=["tender"], concerns=("process",), departments=("医务处",)),
    case("p14", TUE, "孟主任调到行政岗了，接手的覃主任对我们不太了解，后天去见一下覃主任。",
         concerns=("relationship",), na="2026-11-26", contacts=("孟主任","覃主任")),
    case("p15", MON, "报价已经给到客户，总价一百零八万，对方希望再让3个点，周四前回复。",
         stage=["negotiation"], concerns=("price",), na="2026-11-26", amount=1080000),
    case("p16", WED, "手术室的龚护士长说上次培训完大家都会用了，科里计划再买十台，下周约设备科谈细节。",
         stage=["needs"], na="any", contacts=("龚护士长",), departments=("手术室","设备科")),
    case("p17", FRI, "今天在三院开了场学术交流会，反响很好，下周三之前把课件和报价发给医务科。",
         stage=["demo"], na="2026-12-02", account="三院", departments=("医务科",)),
    case("p18", MON, "还有60万尾款没收回来，逾期一个多月了，对方说领导还没签字。", stage=["payment"], concerns=("process",), amount=600000),
    case("p19", THU, "采购中心通知我们中标了！下周二去签合同。", stage=["contract"], na="2026-12-01", departments=("采购中心",)),
    case("p20", TUE, "客户觉得交货太慢，要求十天内到货，我问一下工厂能不能加急，明天给回复。",
         concerns=("delivery",), na="2026-11-25", cues=("urgent",)),
    case("p21", MON, "孙院长挺有兴趣的，想先看看方案和价格，我周五带方案去讲一下。", stage=["needs","demo"], na="2026-11-27", contacts=("孙院长",)),
    case("p22", WED, "维修工程师已经上门处理好了，但科室觉得售后响应太慢，下周二回访。", concerns=("service",), na="2026-12-01"),
    case("p23", TUE, "今天跟采购办核对了技术参数，他们要求耗材能兼容原来的设备，明天让技术确认一下。",
         stage=["tender","needs"], concerns=("product",), na="2026-11-25", departments=("采购办",)),
    case("p24", MON, "明天下午2点去省儿童医院见顾主任，带上样本和报价单。",
         stage=[None,"demo","negotiation"], na="2026-11-24", contacts=("顾主任",), account="省儿童医院",
         due_at="2026-11-24T14:00:00+08:00"),
    case("p25", THU, "价格倒不是问题，主要是要有注册证，下周二前把注册证复印件盖章寄过来。", concerns=("compliance",), na="2026-12-01"),
    case("p26", FRI, "客户没提其他品牌，主任比较关注培训和维保，月底前给他一份售后方案。", concerns=("service",), na="2026-11-30"),
    case("p27", TUE, "大后天上午九点在示教室给骨科讲新产品，顺便约了石主任单独沟通。",
         stage=["demo"], na="2026-11-27", contacts=("石主任",), departments=("骨科",)),
    case("p28", MON, "合同条款还在谈，对方要求保修从一年延长到两年，我周三前和公司确认。",
         stage=["negotiation"], concerns=("service",), na="2026-11-25"),
    case("p29", WED, "包主任说科里的老呼吸机经常出故障，明年打算换新的，我12月5号带工程师去看看。",
         stage=["needs"], concerns=("product",), na="2026-12-05", contacts=("包主任",)),
    case("p30", FRI, "拿到中标通知书了，中标金额76万，下周一去医院签合同。", stage=["contract"], na="2026-11-30", amount=760000),
    case("p31", TUE, "这家医院一直在用美敦力，主任说换品牌需要充分的理由，先把我们的临床数据整理好发过去，周四之前。",
         concerns=("clinical","competitor"), na="2026-11-26", competitors=("美敦力",)),
    case("p32", THU, "今天去二院拜访了普外科的温主任，第一次见面，聊得不错，互加了微信。",
         stage=["first_contact"], contacts=("温主任",), account="二院", departments=("普外科",)),
    case("p33", MON, "货已经到了也验收了，设备入库了，下一步准备开票。", stage=["delivery","payment"], na="any"),
    case("p34", WED, "发票已经寄出，对方说要走完审批流程，大概一个月后付款。", stage=["payment"], concerns=("process",)),
    case("p35", FRI, "客户总预算只有50万，我们报了62万，差距比较大，下周一前重新做一版方案。",
         stage=["negotiation"], concerns=("budget","price"), na="2026-11-30", amount=500000),
    case("p39", THU, "柏主任说院里要组织专家论证，下下周三开会，让我们提前准备好参数材料。",
         stage=["tender"], concerns=("process",), na="any", contacts=("柏主任",)),
    case("p40", MON, "客户说鱼跃和宝莱特都来报过价了，我们的优势是质量稳定，明天把质保承诺函发给他。",
         concerns=("competitor",), na="2026-11-24", competitors=("鱼跃","宝莱特")),
    # fourth batch: voice-style transcripts and other sentence shapes, written blind
    case("v01", MON, "嗯那个今天上午去了一趟省人民医院然后见了心内科的刘主任他说今年的预算还有一百万左右可以考虑我们的产品然后让我下周三之前把报价发给他",
         stage=["needs","negotiation",None], na="2026-12-02", contacts=("刘主任",), account="省人民医院",
         departments=("心内科",), amount=1000000),
    case("v02", MON, "就是说那个市妇幼的项目呃被迈瑞拿走了价格差太多了",
         stage=["lost"], concerns=("competitor","price"), account="市妇幼", competitors=("迈瑞",)),
    case("v03", MON, "那个王主任刚才打电话来说设备有点问题让我们明天派人过去看一下", concerns=("product",), na="2026-11-24", contacts=("王主任",)),
    case("v04", MON, "下礼拜二去市第一人民医院签合同然后顺便把发票开了", stage=["contract"], na="2026-12-01", account="市第一人民医院"),
    case("v05", MON, "嗯客户那边说这个价格他们领导那边通不过要再降一点", stage=["negotiation"], concerns=("price",)),
    case("v06", MON, "张老师说她们科室下个月要搬到新大楼到时候设备要重新安装", stage=["delivery",None], na="any", contacts=("张老师",)),
    case("v07", MON, "今天跟设备科的科长吃饭他说我们的注册证跟投标要求的型号对不上得赶紧去厂家问问",
         stage=["tender",None], concerns=("compliance",), na="any", departments=("设备科",), cues=("urgent",)),
    case("v08", MON, "好的收到我明天上午把资料准备好", na="2026-11-24", due_at="2026-11-24T09:00:00+08:00"),
    case("v09", MON, "GE的人今天也来了，跟我们抢这个单子，主任态度很暧昧", concerns=("competitor",), competitors=("GE",)),
    case("v10", MON, "那个欧阳护士长说他们科要两台输液泵，让我报个价", stage=["needs"], na="any", contacts=("欧阳护士长",)),
    case("v11", MON, "客户说明年一季度才有钱，到时候再说", concerns=("budget",)),
    case("v12", MON, "对方技术部门提了三十多条参数要求，我们有五条不满足，比较麻烦", stage=["tender",None,"needs"], concerns=("product",)),
    case("v13", MON, "下周四下午两点医院开招标会，我需要提前半小时到", stage=["tender"], na="2026-12-03"),
    case("v14", MON, "周二那天去过了，科主任不在，改成周五再去", na="2026-11-27"),
    case("v15", MON, "这个月25号之前一定要把标书做好", stage=["tender"], na="2026-11-25"),
    case("v16", MON, "邱主任对我们比较认可，但是院长更看重价格", concerns=("price",), contacts=("邱主任",)),
    case("v17", MON, "刚从市一院出来，设备科同意先做三个月试用", stage=["trial"], account="市一院", departments=("设备科",)),
    case("v18", MON, "周五前把彩页和报价寄给许主任，顺便问下他们招标进度", stage=["negotiation","tender"], na="2026-11-27", contacts=("许主任",)),
    case("v19", MON, "项目暂停了，院长说等新院区建好再说", stage=[None,"lost","needs"]),
    case("v20", MON, "西门子和GE都报了价，我们排第三，价格比他们高百分之八",
         stage=["negotiation",None], concerns=("competitor","price"), competitors=("西门子","GE")),
    # fifth batch: negation variety, date words, third-party plans, written blind
    case("m01", MON, "小王说设备科这周内会给结果", departments=("设备科",)),
    case("m02", MON, "本月底前一定要把发票开出去，财务在催", stage=["payment"], na="2026-11-30", cues=("urgent",)),
    case("m03", MON, "下月3号去省中医院签合同，合同金额是1200万元",
         stage=["contract"], na="2026-12-03", account="省中医院", amount=12000000),
    case("m04", MON, "元旦前要把设备装完，春节后安排培训", stage=["delivery"], na="2026-12-31"),
    case("m05", MON, "王姐说周四可以见面", ),
    case("m06", MON, "对方其实不在乎价格，更看重售后和培训", concerns=("service",)),
    case("m07", MON, "预算充足，流程也走得快，就是对我们的品牌不太熟", stage=[None]),
    case("m08", MON, "他们的ICU病房要更新一批监护仪，预计明年上半年招标", stage=["needs","tender"], departments=("ICU",)),
    case("m09", MON, "报价单我周三发出去，另外周五之前要再约一次李主任", stage=["negotiation"], na="2026-11-25", contacts=("李主任",)),
    case("m10", MON, "今天签了三方协议，货款分三期付，首期30%下月到账", stage=["contract","payment"]),
    case("m11", MON, "科室反映说原来的呼吸机噪音太大了，想换个安静点的", stage=["needs"], concerns=("product",)),
    case("m12", MON, "对方要的是进口品牌，我们是国产的，有点难", concerns=("competitor",)),
    case("m13", MON, "医院最近在查回扣，主任不太敢见供应商", concerns=("compliance",)),
    case("m14", MON, "胡院长说这个事情要等党委会研究，急不来", concerns=("process",), contacts=("胡院长",)),
    case("m15", MON, "2026年12月18日开标，投标保证金5万", stage=["tender"], amount=50000),
    case("m16", MON, "刚跟北医三院的裴主任通完电话，他说下周二上午有空，我去找他", na="2026-12-01", contacts=("裴主任",), account="北医三院"),
    case("m17", MON, "客户问能不能分期付款，我跟公司申请一下，明天回复", stage=["negotiation","payment"], na="2026-11-24"),
    case("m18", MON, "招标参数里写了必须是进口的，我们基本没戏了", stage=["tender","lost"], concerns=("competitor",)),
    # sixth batch (held-out generalisation rules, each worded away from the held-out sentence)
    # R1 "今天" naming a report does not date the action that follows it
    case("g01", MON, "今天和信息科碰了个面，聊得不错，下周四前把接口文档发过去。",
         na="2026-12-03", departments=("信息科",)),
    case("g02", WED, "今天头一回见到周院长，下周一再约他详细谈。", na="2026-11-30", contacts=("周院长",)),
    case("g03", TUE, "今天在门诊碰到了骨科的程主任，聊了几句，周五带资料去科室。",
         na="2026-11-27", contacts=("程主任",), departments=("骨科",)),
    # R2 review / meeting / presentation verbs, and a deadline with an obligation word
    case("g04", MON, "投标文件初稿好了，后天跟商务部再核对一遍。", stage=["tender"], na="2026-11-25"),
    case("g05", WED, "下周二开个项目推进会，把几家医院的情况过一下。", na="2026-12-01"),
    case("g06", MON, "周三前要把三家医院的配置清单列好。", na="2026-11-25"),
    case("g07", MON, "周四上午给心内科做一次新品讲座。", stage=["demo"], na="2026-11-26", departments=("心内科",),
         due_at="2026-11-26T09:00:00+08:00"),
    # R3 a verb with experiential 过 reports the past
    case("g08", MON, "和院办沟通过，付款要走完审计才行。", stage=["payment"], concerns=("process",),
         departments=("院办",)),
    case("g09", MON, "跟厂家确认过交期没问题，客户那边等通知。"),
    case("g10", MON, "已经给主任演示过了，他说再考虑考虑。", stage=["demo"]),
    # R4 first contact: name cards, met at an event, said hello, added on WeChat
    case("g11", MON, "在年会上认识了省人医骨科的严主任，互相加了微信。", stage=["first_contact"],
         contacts=("严主任",), account="省人医", departments=("骨科",)),
    case("g12", MON, "头一次去市三院，给麻醉科留了张名片。", stage=["first_contact"], account="市三院",
         departments=("麻醉科",)),
    case("g13", MON, "推介会时认识的那位医生，今天主动打招呼了。", stage=["first_contact"]),
    # R5 order placed / deal signed
    case("g14", MON, "附一院检验科那台生化仪终于下单了！", stage=["contract"], account="附一院", departments=("检验科",)),
    case("g15", MON, "三个月的努力，这单总算签下来了，金额九十五万。", stage=["contract"], amount=950000),
    case("g16", FRI, "客户昨天下了订单，两台麻醉机。", stage=["contract"]),
    # R6 money still owed
    case("g17", MON, "设备款还差二十万没到，月底再去财务问。", stage=["payment"], na="2026-11-30", amount=200000),
    case("g18", MON, "人民医院的货款已经结清了。", stage=["payment"], account="人民医院"),
    case("g19", MON, "最后一笔钱医院说要等审计完才能付。", stage=["payment"], concerns=("process",)),
    # R7 presentations count as demo
    case("g20", MON, "上午给麻醉科讲完了整体方案，反响挺好。", stage=["demo"], departments=("麻醉科",)),
    case("g21", MON, "昨天的demo效果一般，主任还在犹豫。", stage=["demo"]),
    case("g22", MON, "下周一去给专家组做汇报。", stage=["demo", "tender"], na="2026-11-30"),
    # R8 price: negotiation verbs and the customer's figure against ours; our own discount is no objection
    case("g23", MON, "院方坚持要降10%，不然不签。", stage=["negotiation"], concerns=("price",)),
    case("g24", MON, "采购办只肯出五十万，我们报了六十三万。", stage=["negotiation"], concerns=("price",),
         departments=("采购办",), amount=500000),
    case("g25", MON, "这次我们主动让利，报价打了九折，客户很满意。", stage=["negotiation"]),
    case("g26", MON, "项目比预期慢了两周，主要是院里审核时间长。", concerns=("process",)),
    # R9 product: usability and compatibility
    case("g27", MON, "护士反映软件界面太繁琐，层级太深。", concerns=("product",)),
    case("g28", MON, "信息科说我们的数据跟他们PACS对不上，需要厂家来调。", concerns=("product",),
         departments=("信息科",)),
    case("g29", MON, "监护仪跟医院的HIS接不上，工程师下周过去看看。", concerns=("product",), na="any"),
    # R10 delivery lead times compared
    case("g30", MON, "飞利浦说一个月内就能到货，我们最快也要三个月才能交货。", concerns=("delivery", "competitor"),
         competitors=("飞利浦",)),
    case("g31", MON, "客户担心到货太慢，我们的排期至少要十周。", concerns=("delivery",)),
    case("g32", MON, "对方只要两周交付，这一点我们比不过。", concerns=("delivery",)),
    # R11 decision-maker changes
    case("g33", MON, "医院新院长上任，之前谈好的事要重新汇报。", concerns=("relationship",), na="any"),
    case("g34", MON, "设备科科长换人了，新的科长还不熟。", concerns=("relationship",), departments=("设备科",)),
    case("g35", MON, "心内科主任调走了，接任的是原来的副主任。", concerns=("relationship",), departments=("心内科",)),
    # R12 process: reviews and approvals holding the deal; asking about the procedure is not one
    case("g36", MON, "方案要过会才能定，下次院务会在月底。", concerns=("process",)),
    case("g37", MON, "申请单交上去了，书记那边还没签。", concerns=("process",)),
    case("g38", MON, "周四去招标办了解一下流程。", na="2026-11-26", departments=("招标办",)),
    # R13 budget short of the quote
    case("g39", MON, "科里的经费不太够，得等明年财政拨款下来。", concerns=("budget",)),
    case("g40", MON, "预算不大够，只能先上一台。", concerns=("budget",)),
    # R14 praise covers only its own stretch of the clause
    case("g41", MON, "医生觉得图像很好，只是探头太重。", concerns=("product",)),
    case("g42", MON, "主任对方案很满意，但是预算不够。", concerns=("budget",)),
    case("g43", MON, "售后大家都认可，不过价格偏高。", concerns=("price",)),
    # R15 names: a surname glued to a preceding word is not one; a two-character full name is
    case("g44", MON, "报价单护士长已经签字了。", stage=["negotiation"]),
    case("g45", MON, "分管院长下周出差。"),
    case("g46", MON, "今天拜访了刘洋主任，约了下周三看样机。", stage=["trial", "demo"], na="2026-12-02",
         contacts=("刘洋主任",)),
    case("g47", MON, "跟陈静护士长对了一下排班。", contacts=("陈静护士长",)),
    case("g48", MON, "项目主任说不急，年后再说。"),
    # R16 a hospital cited as a reference is not the account
    case("g49", MON, "下周去市二院，带上华山医院的装机案例。", concerns=("clinical",), na="any", account="市二院"),
    case("g50", MON, "下周参考瑞金医院的配置给省妇幼出一版方案。", na="any", account="省妇幼"),
    # R17 words inside a department name are no stage; a lead time is no delivery; the rep's own
    # "了解一下" is no customer need; a step already taken is no process concern; our discount is no objection
    case("g51", MON, "招标办的老师人很好，帮忙看了一下资料。", departments=("招标办",)),
    case("g52", MON, "采购中心下午开会，结果等通知。", departments=("采购中心",)),
    case("g53", MON, "竞品承诺十天就能到货，我们的货期是一个半月。", concerns=("delivery", "competitor")),
    case("g54", MON, "明天去设备处了解一下他们的采购计划。", na="2026-11-24", departments=("设备处",)),
    case("g55", MON, "院长已经审批了，等采购办排期。", departments=("采购办",)),
    case("g56", MON, "这次报价我司已经让到八五折，比上次多让了两个点。", stage=["negotiation"]),
    case("g57", MON, "对方坚持再降3个点才签。", stage=["negotiation"], concerns=("price",)),
    # R18 "下周一或者周二": the second weekday shares the first one's week
    case("g58", MON, "下周二或者周三去骨科送样机。", stage=["trial"], na="2026-12-01", departments=("骨科",)),
    case("g59", TUE, "下礼拜四和礼拜五连着两天在手术室跟台。", stage=["trial"], na="2026-12-03", departments=("手术室",)),
    case("g60", MON, "下下周一到周三我们都在现场装机。", stage=["delivery"], na="2026-12-07"),
    case("d30", MON, "王主任 张主任 李护士长都到了 演示很顺利 下周安排试用", stage=["demo"], na="any",
         contacts=("王主任", "张主任", "李护士长")),
]


@pytest.fixture(scope="module")
def extractor() -> Extractor:
    return Extractor(load_lexicon())


@pytest.mark.parametrize("now, text, expect", CASES)
def test_case(extractor: Extractor, now: str, text: str, expect: dict[str, Any]) -> None:
    note = extractor.extract(text, datetime.fromisoformat(now))
    got = note.to_dict()
    errors = []
    if got["stage"] not in expect["stage"]:
        errors.append(f"stage {got['stage']!r} not in {expect['stage']!r}")
    for key in ("concerns", "contacts", "departments", "competitors", "cues"):
        if set(got[key]) != expect[key]:
            errors.append(f"{key} {got[key]!r} != {sorted(expect[key])!r}")
    for key in ("account", "amount"):
        if got[key] != expect[key]:
            errors.append(f"{key} {got[key]!r} != {expect[key]!r}")
    na = got["next_action"]
    if expect["na"] is None:
        if na is not None:
            errors.append(f"unexpected next_action {na!r}")
    elif na is None:
        errors.append("missing next_action")
    elif expect["na"] != "any" and na["due"] != expect["na"]:
        errors.append(f"due {na['due']!r} != {expect['na']!r}")
    if expect["due_at"] and (na is None or na["due_at"] != expect["due_at"]):
        errors.append(f"due_at {na and na['due_at']!r} != {expect['due_at']!r}")
    if all(v in (None, set(), [None]) for k, v in expect.items()):
        assert note.is_empty(), f"expected an empty note, got {got}"
    assert not errors, "; ".join(errors) + f"\n{got}"


def test_enough_cases() -> None:
    assert len(CASES) >= 60


def test_cases_survive_voice_style(extractor: Extractor) -> None:
    """The same cases with all punctuation removed (speech transcripts) still come out right."""
    failures = []
    for param in CASES:
        now, text, expect = param.values
        bare = "".join(ch for ch in text if ch not in "，。！？、；：,.!?;:")
        try:
            test_case(extractor, now, bare, expect)
        except AssertionError as exc:
            failures.append(f"{param.id}: {str(exc).splitlines()[0]}")
    assert len(failures) <= len(CASES) // 20, "\n".join(failures)
