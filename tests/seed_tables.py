"""Merger lists hand-copied from the source documents in /work/shared/seeds/.

Plain data, written from the documents (not from merger_config/), so
tests/config/test_shipped_configs.py can hold the shipped YAML files against them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SeedLine:
    """One hotline as the document states it."""

    number: str
    unit: str
    mode: str
    name: str | None = None  # None: the document names only the unit
    cutover: dt.date | None = None
    aliases: tuple[str, ...] = ()
    expert: bool = False  # 设专家座席
    own_seats: bool = False  # 各自接听 (双号并行 lines that keep their seats)
    scope: str | None = None  # sub-centre scope: province (全区集中) / city (各市设置)


@dataclass(frozen=True)
class SeedRegion:
    """A region's facts: cities with area codes, transition length, lines."""

    config: str
    cities: dict[str, str]  # name -> area code
    transition_months: int | None
    lines: tuple[SeedLine, ...]
    emergency: tuple[str, ...] = field(default=())


# --- Guangxi: 000_c34b3ab7d05c8086.txt, 附件《12345热线归并清单》(共33条) -------------------------------------

# 二(一) 整体并入: numbers retired, seats to the city 12345; 完成时间 2021年8月底前. Annex rows 1-14.
_GX_MERGE = dt.date(2021, 8, 31)
# 二(二) 双号并行: numbers kept, seats into 12345; 完成时间 2021年11月底前. Annex rows 15-28.
_GX_PARALLEL = dt.date(2021, 11, 30)
# 二(三) 设分中心: 完成时间 2021年7月底前. Annex rows 29-33.
_GX_SUBCENTRE = dt.date(2021, 7, 31)

GUANGXI_LINES: tuple[SeedLine, ...] = (
    # Annex rows 1-14, column 整体并入.
    SeedLine("12300", "自治区通信管理局", "merge", "全国电信用户申诉渠道咨询电话", _GX_MERGE),
    SeedLine("12301", "自治区文化和旅游厅", "merge", "全国统一旅游资讯服务电话", _GX_MERGE),
    SeedLine("12312", "自治区商务厅", "merge", "全国统一商务领域举报投诉咨询服务电话", _GX_MERGE),
    SeedLine("12322", "自治区地震局", "merge", "全国防震减灾公益服务电话", _GX_MERGE),
    SeedLine("12330", "自治区市场监管局", "merge", "全国统一知识产权维权援助公益服务电话", _GX_MERGE),
    SeedLine("12331", "自治区市场监管局", "merge", "全国统一食品药品监督举报服务电话", _GX_MERGE),
    SeedLine("12336", "自治区自然资源厅", "merge", "全国统一自然资源违法举报电话", _GX_MERGE),
    SeedLine("12343", "广西博览局", "merge", "东盟博览会热线", _GX_MERGE),
    SeedLine("12349", "自治区民政厅", "merge", "全国统一民政服务电话", _GX_MERGE),
    SeedLine("12356", "自治区卫生健康委", "merge", "人口和计划生育法律法规咨询及举报投诉服务专用电话", _GX_MERGE),
    SeedLine("12358", "自治区市场监管局", "merge", "全国价格投诉举报统一电话", _GX_MERGE),
    SeedLine("12365", "自治区市场监管局", "merge", "全国质量技术监督系统和出入境检验检疫统一电话", _GX_MERGE),
    SeedLine("12396", "自治区科技厅", "merge", "全国统一科技公益服务电话", _GX_MERGE),
    SeedLine("96119", "广西消防救援总队", "merge", "火灾隐患举报投诉电话", _GX_MERGE),
    # Annex rows 15-28, column 双号并行; 备注 设专家座席 on rows 15, 16, 20, 21, 22, 23; 各自接听 on row 28.
    SeedLine("12315", "自治区市场监管局", "parallel", "12315市场监管投诉举报热线", _GX_PARALLEL, expert=True),
    SeedLine("12316", "自治区农业农村厅", "parallel", "全国农业系统公益服务电话", _GX_PARALLEL, expert=True),
    SeedLine("12317", "自治区乡村振兴局", "parallel", "全国扶贫监督举报平台电话", _GX_PARALLEL),
    SeedLine("12318", "自治区文化和旅游厅", "parallel", "全国文化市场举报电话", _GX_PARALLEL),
    SeedLine("12319", "自治区住房城乡建设厅", "parallel", "全国住房和城乡建设服务电话", _GX_PARALLEL),
    SeedLine("12320", "自治区卫生健康委", "parallel", "全国统一公共卫生公益服务电话", _GX_PARALLEL, expert=True),
    SeedLine("12328", "自治区交通运输厅", "parallel", "全国交通运输服务监督电话", _GX_PARALLEL, expert=True),
    SeedLine(
        "12329",
        "自治区住房城乡建设厅、机关事务管理局",
        "parallel",
        "全国统一住房公积金热线服务电话",
        _GX_PARALLEL,
        expert=True,
    ),
    SeedLine(
        "12333", "自治区人力资源社会保障厅", "parallel", "全国人力资源和社会保障服务电话", _GX_PARALLEL, expert=True
    ),
    SeedLine("12350", "自治区应急厅", "parallel", "全国统一安全生产举报投诉电话", _GX_PARALLEL),
    SeedLine("12369", "自治区生态环境厅", "parallel", "环境保护投诉举报电话", _GX_PARALLEL),
    SeedLine("12385", "自治区残联", "parallel", "全国残疾人维权服务电话", _GX_PARALLEL),
    SeedLine("12393", "自治区医保局", "parallel", "医疗保障服务热线", _GX_PARALLEL),
    SeedLine("12348", "自治区司法厅", "parallel", "全国公共法律服务专用电话", _GX_PARALLEL, own_seats=True),
    # Annex rows 29-33, column 设分中心; 二(三): 12305/12360/12366/12367 全区集中, 12313 各市设置分中心.
    SeedLine("12305", "广西邮政管理局", "subcentre", "全国邮政业用户申诉电话", _GX_SUBCENTRE, scope="province"),
    SeedLine("12313", "自治区烟草局", "subcentre", "全国烟草专卖品市场监管举报电话", _GX_SUBCENTRE, scope="city"),
    SeedLine("12360", "南宁海关", "subcentre", "全国统一海关公益服务电话", _GX_SUBCENTRE, scope="province"),
    SeedLine("12366", "广西税务局", "subcentre", "全国税务系统统一电话", _GX_SUBCENTRE, scope="province"),
    SeedLine(
        "12367",
        "广西出入境边防检查总站、自治区公安厅",
        "subcentre",
        "国家移民管理局12367咨询服务热线",
        _GX_SUBCENTRE,
        scope="province",
    ),
)

# 一、工作目标: "除110、119、120、122等紧急热线外" — they stay outside; the plan names no unit for them.
GUANGXI_EMERGENCY = ("110", "119", "120", "122")

# Guangxi's 14 cities (地级市) and their long-distance area codes (several share one).
GUANGXI = SeedRegion(
    config="guangxi.yaml",
    cities={
        "南宁": "0771",
        "柳州": "0772",
        "桂林": "0773",
        "梧州": "0774",
        "北海": "0779",
        "防城港": "0770",
        "钦州": "0777",
        "贵港": "0775",
        "玉林": "0775",
        "百色": "0776",
        "贺州": "0774",
        "河池": "0778",
        "来宾": "0772",
        "崇左": "0771",
    },
    transition_months=None,  # the plan sets a 过渡期 (三(八)) but gives no length
    # The emergency lines follow the annex; the plan names no unit for them ("" = not stated).
    lines=GUANGXI_LINES + tuple(SeedLine(n, "", "transfer") for n in GUANGXI_EMERGENCY),
    emergency=GUANGXI_EMERGENCY,
)

# --- Yuncheng: 003_9c6fc3688e9660b9.txt, 《运城市整合政务服务热线实施方案》政策解读 --------------------------

# 六(一) 第一阶段 2019年12月: 直接合并 done by the end of December 2019.
_YC_MERGE = dt.date(2019, 12, 31)
# 六(二) 第二阶段 2020年1月—2020年5月: 远端座席 and 对接联通 done by the end of May 2020.
_YC_PHASE2 = dt.date(2020, 5, 31)

YUNCHENG_LINES: tuple[SeedLine, ...] = (
    # 五(一) 直接合并方式, 7 lines; 6-month 过渡期 with the verbatim prompt.
    SeedLine("2666110", "市创建办", "merge", cutover=_YC_MERGE),
    SeedLine("2085615", "市文旅局", "merge", cutover=_YC_MERGE),
    SeedLine("12312", "市商务局", "merge", cutover=_YC_MERGE),
    SeedLine("12351", "市总工会", "merge", cutover=_YC_MERGE),
    SeedLine("12338", "市妇联", "merge", cutover=_YC_MERGE),
    SeedLine("12355", "团市委", "merge", cutover=_YC_MERGE),
    SeedLine("96302", "市工信局", "merge", cutover=_YC_MERGE),
    # 五(二) 设置远端座席方式, 16 lines; 12315 also answers 12358, 12365, 12331, 12330.
    SeedLine("12369", "市生态环境局", "parallel", cutover=_YC_PHASE2),
    SeedLine("12349", "市民政局", "parallel", cutover=_YC_PHASE2),
    SeedLine("12350", "市应急局", "parallel", cutover=_YC_PHASE2),
    SeedLine("12328", "市交通局", "parallel", cutover=_YC_PHASE2),
    SeedLine("12315", "市市场监管局", "parallel", cutover=_YC_PHASE2, aliases=("12358", "12365", "12331", "12330")),
    SeedLine("12329", "市住房公积金管理中心", "parallel", cutover=_YC_PHASE2),
    SeedLine("12389", "市公安局", "parallel", cutover=_YC_PHASE2),
    SeedLine("12348", "市司法局", "parallel", cutover=_YC_PHASE2),
    SeedLine("12333", "市人社局", "parallel", cutover=_YC_PHASE2),
    SeedLine("12366", "市税务局", "parallel", cutover=_YC_PHASE2),
    SeedLine("12319", "市住建局", "parallel", cutover=_YC_PHASE2),
    SeedLine("12318", "市文旅局", "parallel", cutover=_YC_PHASE2),
    SeedLine("12385", "市残联", "parallel", cutover=_YC_PHASE2),
    SeedLine("12313", "市烟草专卖局", "parallel", cutover=_YC_PHASE2),
    SeedLine("12336", "市规划和自然资源局", "parallel", cutover=_YC_PHASE2),
    SeedLine("96119", "市消防支队", "parallel", cutover=_YC_PHASE2),
    # 五(三) 对接联通方式, 19 lines (two numbers each for 首创水务 and 市热力公司).
    SeedLine("2660412", "市红十字会", "linked", cutover=_YC_PHASE2),
    SeedLine("2059022", "市审批服务管理局", "linked", cutover=_YC_PHASE2),
    SeedLine("2587066", "首创水务", "linked", cutover=_YC_PHASE2),
    SeedLine("2587866", "首创水务", "linked", cutover=_YC_PHASE2),
    SeedLine("2120770", "银龙水务", "linked", cutover=_YC_PHASE2),
    SeedLine("6363236", "运城供电公司", "linked", cutover=_YC_PHASE2),
    SeedLine("2860001", "市热力公司", "linked", cutover=_YC_PHASE2),
    SeedLine("2160001", "市热力公司", "linked", cutover=_YC_PHASE2),
    SeedLine("2368555", "晋建热电", "linked", cutover=_YC_PHASE2),
    SeedLine("2062626", "经纬燃气", "linked", cutover=_YC_PHASE2),
    SeedLine("2587777", "民生天然气", "linked", cutover=_YC_PHASE2),
    SeedLine("2360555", "蓝星广播电视", "linked", cutover=_YC_PHASE2),
    SeedLine("2339500", "蓝星同方数字电视", "linked", cutover=_YC_PHASE2),
    SeedLine("2128311", "市公共交通总公司", "linked", cutover=_YC_PHASE2),
    SeedLine("6391200", "市城际通巴士公交有限公司", "linked", cutover=_YC_PHASE2),
    SeedLine("2361111", "市公共自行车服务有限公司", "linked", cutover=_YC_PHASE2),
    SeedLine("2561166", "运城开发区秋钰热力", "linked", cutover=_YC_PHASE2),
    SeedLine("2551315", "勤能新能源", "linked", cutover=_YC_PHASE2),
    SeedLine("2577201", "弘益水务", "linked", cutover=_YC_PHASE2),
    # 五(四) 话务转接方式, 5 lines; numbers and seats kept, one-key transfer (六(三) 2020年6月—8月).
    SeedLine("110", "市公安局", "transfer"),
    SeedLine("122", "市公安局交警支队", "transfer"),
    SeedLine("12122", "高速交警", "transfer"),
    SeedLine("119", "市消防支队", "transfer"),
    SeedLine("120", "市卫健委", "transfer"),
    # 四 整合范围: 7 lines outside the merger, 只提供话务引导.
    SeedLine("12339", "市国家安全局", "guidance"),
    SeedLine("12388", "市纪检监察委", "guidance"),
    SeedLine("12309", "市检察院", "guidance"),
    SeedLine("12368", "市中级法院", "guidance"),
    SeedLine("12380", "市委组织部", "guidance"),
    SeedLine("12371", "市委组织部", "guidance"),
    SeedLine("12310", "市委编办", "guidance"),
)

# 五(一): "您所拨打的电话业务已转移到运城市政务服务热线，请下次直接拨打12345", 6个月的过渡期.
YUNCHENG_PROMPT = "您所拨打的电话业务已转移到运城市政务服务热线，请下次直接拨打12345"

YUNCHENG = SeedRegion(
    config="yuncheng.yaml",
    cities={"运城": "0359"},
    transition_months=6,
    lines=YUNCHENG_LINES,
    emergency=("110", "122", "12122", "119", "120"),
)

# --- Yongzhou: 001_b26392d8f4d06068.txt, 草拟稿 -----------------------------------------------------------

# 一(一): "除110、120、119等报警和紧急求助热线外"; 二(三): 110 passes non-police calls to 12345.
# The draft names no hotline to merge: 二(二) keeps national special numbers without listing them.
YONGZHOU = SeedRegion(
    config="yongzhou.yaml",
    cities={"永州": "0746"},
    transition_months=None,
    lines=(
        # The draft names no unit for them: "" means "not stated", the shipped file's unit is not compared.
        SeedLine("110", "", "transfer"),
        SeedLine("119", "", "transfer"),
        SeedLine("120", "", "transfer"),
        SeedLine("122", "", "transfer"),
    ),
    emergency=("110", "119", "120", "122"),
)
# 三(二) 整合规范阶段 ends 2018-01-31: department numbers are withdrawn after that.
YONGZHOU_INTEGRATION_END = dt.date(2018, 1, 31)
