"""Realistic values for demo data (seed_demo, benchmarks): names, identity numbers, bikes, addresses.

Pure functions and tables, no database access. Two kinds of values:

- Free values (names, brands, colours, dates, phones) come from a `random.Random` the caller seeds.
- Values that must be unique (resident ID, credit code, frame and motor serials, policy numbers)
  are a keyed bijection of a database id taken from the table's sequence. Distinct ids give
  distinct values, in this run and in every later run, without a lookup; the permutation keys are
  constants for that reason (a different `--seed` must not be able to repeat a value).

Township populations and a few station assignments are demo approximations, not census figures.
"""

import datetime
import random
from dataclasses import dataclass
from typing import Generic, TypeVar

from vehicles.identifiers import resident_id_check_char

# --- keyed bijections ----------------------------------------------------------------------------


class KeyedPermutation:
    """A bijection of range(size) onto itself that looks random (xorshift-multiply rounds + cycle walking).

    Each round is invertible on k-bit integers (odd multiplier, addition, xorshift), so the whole is
    a permutation of [0, 2**k); walking the cycle until the value falls below `size` restricts it to
    a permutation of [0, size).
    """

    def __init__(self, size: int, key: int) -> None:
        if size < 2:
            raise ValueError("size must be at least 2")
        self.size = size
        self.bits = max(4, (size - 1).bit_length())
        self.mask = (1 << self.bits) - 1
        self.shift = max(1, self.bits // 2)
        rng = random.Random(key)  # noqa: S311 - a fixed key makes the permutation a constant
        self.rounds = [(rng.getrandbits(self.bits) | 1, rng.getrandbits(self.bits)) for _ in range(3)]

    def __call__(self, index: int) -> int:
        if not 0 <= index < self.size:
            raise ValueError(f"index {index} outside the permutation's range 0..{self.size - 1}")
        x = index
        mask, shift = self.mask, self.shift
        while True:
            for mul, add in self.rounds:
                x = (x * mul + add) & mask
                x ^= x >> shift
            if x < self.size:
                return x


# --- resident ID numbers (GB 11643) --------------------------------------------------------------

BIRTH_FIRST = datetime.date(1950, 1, 1)
BIRTH_LAST = datetime.date(2005, 12, 31)
BIRTH_DAYS = (BIRTH_LAST - BIRTH_FIRST).days + 1
# Sequence codes 001-998: odd for men, even for women; 499 of each per address code and birth day.
SEQ_PAIRS = 499
RESIDENT_SPACE = BIRTH_DAYS * SEQ_PAIRS  # about 10.2 million distinct owners
_RESIDENT_PERM = KeyedPermutation(RESIDENT_SPACE, key=0x1102229)

# Address codes on ID cards of people living in Yutian: mostly the county's own, some from the rest
# of Tangshan (people who moved in), a few with the pre-2018 code of Luan county (130223).
ID_AREA_CODES: list[tuple[str, float]] = [
    ("130229", 88.0),  # 玉田县
    ("130281", 2.0),  # 遵化市
    ("130208", 2.0),  # 丰润区
    ("130203", 1.5),  # 路北区
    ("130202", 1.0),  # 路南区
    ("130283", 1.0),  # 迁安市
    ("130227", 0.8),  # 迁西县
    ("130284", 0.7),  # 滦州市
    ("130223", 0.5),  # 滦县 (old code)
    ("130207", 0.5),  # 丰南区
    ("130224", 0.4),  # 滦南县
    ("130225", 0.3),  # 乐亭县
    ("130205", 0.3),  # 开平区
    ("130204", 0.3),  # 古冶区
    ("130209", 0.2),  # 曹妃甸区
    ("120225", 0.5),  # 天津蓟州 (neighbouring county)
]


def resident_id_from(area: str, birth: datetime.date, seq: int) -> str:
    body = f"{area}{birth:%Y%m%d}{seq:03d}"
    return body + resident_id_check_char(body)


def resident_id_for_index(index: int, *, area: str, male: bool) -> tuple[str, datetime.date]:
    """The resident ID number of demo owner `index` (a database id): unique per index."""
    day, pair = divmod(_RESIDENT_PERM(index), SEQ_PAIRS)
    birth = BIRTH_FIRST + datetime.timedelta(days=day)
    seq = 2 * pair + (1 if male else 2)
    return resident_id_from(area, birth, seq), birth


def random_resident_id(rng: random.Random, *, male: bool, born_from: int = 1960, born_to: int = 2000) -> str:
    """A valid resident ID number that is not guaranteed unique (authorised agents, bench input)."""
    birth = datetime.date(born_from, 1, 1) + datetime.timedelta(
        days=rng.randrange((datetime.date(born_to, 12, 31) - datetime.date(born_from, 1, 1)).days)
    )
    seq = 2 * rng.randrange(SEQ_PAIRS) + (1 if male else 2)
    return resident_id_from(weighted(rng, ID_AREA_CODES), birth, seq)


# --- unified social credit codes (GB 32100) and organisation codes (GB 11714) ---------------------

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_PERM = KeyedPermutation(100_000_000, key=0x32100)


def org_code_check_char(body8: str) -> str:
    """GB 11714 check character of an 8-character organisation code body."""
    total = sum(int(c, 36) * w for c, w in zip(body8, ORG_CODE_WEIGHTS, strict=True))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def uscc_check_char(first17: str) -> str:
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def credit_code_for_index(index: int, *, area: str = "130229", org_type: str = "1") -> str:
    """Registration authority 9 (market regulation), type 1 enterprise / 2 individual business."""
    body = f"{_ORG_PERM(index):08d}"
    first17 = f"9{org_type}{area}{body}{org_code_check_char(body)}"
    return first17 + uscc_check_char(first17)


# --- weighted choice helper ----------------------------------------------------------------------


T = TypeVar("T")


def weighted(rng: random.Random, table: list[tuple[T, float]]) -> T:
    return rng.choices([value for value, _weight in table], weights=[weight for _value, weight in table])[0]


class WeightedTable(Generic[T]):
    """Fast repeated weighted choice: cumulative weights computed once."""

    def __init__(self, table: list[tuple[T, float]]) -> None:
        self.values = [value for value, _weight in table]
        total = 0.0
        self.cumulative: list[float] = []
        for _value, weight in table:
            total += weight
            self.cumulative.append(total)
        self.total = total

    def pick(self, rng: random.Random) -> T:
        return rng.choices(self.values, cum_weights=self.cumulative)[0]


# --- names -----------------------------------------------------------------------------------------

# Common surnames with rough frequencies for northern Hebei (percent).
SURNAMES: list[tuple[str, float]] = [
    ("王", 9.5), ("李", 8.6), ("张", 8.4), ("刘", 6.5), ("赵", 4.0), ("杨", 3.2), ("高", 2.2),
    ("孙", 2.1), ("陈", 2.0), ("马", 1.9), ("郭", 1.8), ("田", 1.4), ("于", 1.3), ("董", 1.3),
    ("贾", 1.2), ("徐", 1.1), ("吴", 1.0), ("周", 1.0), ("韩", 1.0), ("宋", 1.0), ("齐", 0.9),
    ("霍", 0.8), ("邢", 0.8), ("曹", 0.8), ("冯", 0.8), ("朱", 0.8), ("许", 0.7), ("魏", 0.7),
    ("孟", 0.7), ("崔", 0.7), ("郑", 0.7), ("胡", 0.7), ("石", 0.6), ("付", 0.6), ("常", 0.6),
    ("白", 0.6), ("侯", 0.6), ("谷", 0.5), ("闫", 0.5), ("范", 0.5), ("姚", 0.5), ("程", 0.5),
    ("梁", 0.5), ("黄", 0.5), ("杜", 0.5), ("康", 0.4), ("任", 0.4), ("苏", 0.4), ("史", 0.4),
    ("郝", 0.4), ("丁", 0.4), ("武", 0.4), ("姜", 0.4), ("卢", 0.3), ("袁", 0.3), ("蔡", 0.3),
    ("薛", 0.3), ("尹", 0.3), ("邵", 0.3), ("鲁", 0.3), ("秦", 0.3), ("戴", 0.2), ("边", 0.2),
    ("耿", 0.2), ("尚", 0.2), ("靳", 0.2), ("左", 0.2), ("褚", 0.1), ("欧阳", 0.05), ("司马", 0.03),
]  # fmt: skip

# Given-name characters by generation: names chosen for children born before 1975 differ from
# those of the 1990s and 2000s.
MALE_OLD = "国建志德福玉永树春长金海广林文明军庆立宝山胜利民华成凤学东平洪振富贵友"
MALE_NEW = "伟强磊洋勇杰涛超刚辉鹏飞鑫波斌宇浩凯健俊帆帅旭宁龙阳亮晨博轩睿泽哲然航铭"
FEMALE_OLD = "秀英桂兰凤玉珍淑芳素春翠霞红梅荣琴华云兰金香菊艳丽敏"
FEMALE_NEW = "芳娜敏静丽艳娟婷颖慧晶洁欣怡雨涵萱佳璐瑶倩蕾丹莉月雪琳梦悦欢诗"
# Whole given names that are common in their generation.
MALE_CLASSIC = ["建国", "国庆", "建华", "志刚", "德福", "玉山", "永利", "树林", "春生", "振华", "立新", "卫东"]
FEMALE_CLASSIC = ["秀英", "桂兰", "淑珍", "凤兰", "玉珍", "秀兰", "桂芝", "春花", "丽华", "秀云", "玉梅", "素芳"]
MALE_MODERN = ["子轩", "浩宇", "宇航", "一鸣", "梓豪", "俊杰", "博文", "浩然", "天佑", "家豪"]
FEMALE_MODERN = ["梓涵", "欣怡", "雨桐", "诗涵", "可馨", "思雨", "一诺", "佳怡", "雨欣", "梦瑶"]

_SURNAMES = WeightedTable(SURNAMES)


def person_name(rng: random.Random, *, male: bool, birth_year: int) -> str:
    surname = _SURNAMES.pick(rng)
    old = birth_year < 1975
    if rng.random() < 0.15:
        if male:
            given = rng.choice(MALE_CLASSIC if old else MALE_MODERN)
        else:
            given = rng.choice(FEMALE_CLASSIC if old else FEMALE_MODERN)
        return surname + given
    chars = (MALE_OLD if old else MALE_NEW) if male else (FEMALE_OLD if old else FEMALE_NEW)
    if len(surname) == 2 or rng.random() < 0.3:
        return surname + rng.choice(chars)
    return surname + rng.choice(chars) + rng.choice(chars)


# --- phones ------------------------------------------------------------------------------------------

# Mobile prefixes of China Mobile, Unicom and Telecom, weighted towards the common old ones.
PHONE_PREFIXES: list[tuple[str, float]] = [
    *((p, 3.0) for p in ("134", "135", "136", "137", "138", "139", "150", "151", "152", "157", "158", "159")),
    *((p, 2.0) for p in ("182", "183", "187", "188", "130", "131", "132", "155", "156", "185", "186")),
    *((p, 1.5) for p in ("133", "153", "180", "181", "189", "177", "178", "176", "173")),
    *((p, 0.7) for p in ("147", "166", "175", "191", "198", "199", "195", "145", "149")),
]
_PHONES = WeightedTable(PHONE_PREFIXES)


def mobile_phone(rng: random.Random) -> str:
    return f"{_PHONES.pick(rng)}{rng.randrange(100_000_000):08d}"


# --- townships and addresses -------------------------------------------------------------------------

# Approximate resident population per township (demo weights; they sum to about the 2020 census
# total of 664,906). Stations get bikes roughly in proportion to the townships they serve.
TOWNSHIP_POPULATION: dict[str, int] = {
    "130229001": 86_000,  # 无终街道 (county seat)
    "130229100": 66_000,  # 玉田镇
    "130229101": 33_000,  # 亮甲店镇
    "130229102": 48_000,  # 鸦鸿桥镇
    "130229103": 34_000,  # 窝洛沽镇
    "130229104": 33_000,  # 石臼窝镇
    "130229105": 34_000,  # 虹桥镇
    "130229106": 29_000,  # 散水头镇
    "130229107": 33_000,  # 林南仓镇
    "130229108": 24_000,  # 林西镇
    "130229109": 24_000,  # 杨家板桥镇
    "130229110": 29_000,  # 彩亭桥镇
    "130229111": 29_000,  # 孤树镇
    "130229112": 24_000,  # 大安镇镇
    "130229113": 24_000,  # 唐自头镇
    "130229114": 19_000,  # 郭家屯镇
    "130229115": 19_000,  # 杨家套镇
    "130229116": 19_000,  # 陈家铺镇
    "130229201": 14_000,  # 林头屯乡
    "130229203": 12_000,  # 潮洛窝乡
    "130229205": 14_000,  # 郭家桥乡
    "130229400": 10_000,  # 河北玉田经济开发区
    "130229401": 3_000,  # 河北唐山国家农业科技园区
}
# Townships without a station of their own, and the township whose station serves them (demo).
SERVED_BY: dict[str, str] = {"130229201": "130229107", "130229203": "130229103", "130229401": "130229100"}
URBAN_TOWNSHIPS = {"130229001", "130229100", "130229400"}
COUNTY_PREFIX = "河北省唐山市玉田县"

ROADS = [
    "无终东街", "无终西街", "光明路", "兴隆路", "迎宾路", "建设路", "文化路", "永安路", "福安路",
    "北环路", "南环路", "康宁路", "顺城街", "玉田大街", "鸿桥大街", "渤海路", "华龙路", "昌盛街",
]  # fmt: skip
COMMUNITIES = [
    "阳光花园", "玉龙湾", "锦绣华庭", "金都家园", "御景园", "翰林苑", "和平小区", "北苑小区",
    "东方花园", "盛世华庭", "书香苑", "幸福家园", "玉泉小区", "龙泉花园", "滨河湾",
]  # fmt: skip
VILLAGE_HEADS = ["东", "西", "南", "北", "前", "后", "大", "小", "上", "下", ""]
VILLAGE_TAILS = ["庄", "各庄", "家庄", "官屯", "营", "店", "坨", "沽", "套", "铺", "屯", "堡", "窝", "寨"]


def township_short(name: str) -> str:
    for suffix in ("街道", "镇", "乡"):
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name.removeprefix("河北玉田").removeprefix("河北唐山")


def address(rng: random.Random, *, township_code: str, township_name: str) -> str:
    if township_code in URBAN_TOWNSHIPS:
        if rng.random() < 0.6:
            building, unit, room = rng.randint(1, 32), rng.randint(1, 4), rng.randint(1, 18) * 100 + rng.randint(1, 4)
            return f"{COUNTY_PREFIX}{township_name}{rng.choice(COMMUNITIES)}{building}号楼{unit}单元{room}室"
        return f"{COUNTY_PREFIX}{township_name}{rng.choice(ROADS)}{rng.randint(1, 399)}号"
    village = rng.choice(VILLAGE_HEADS) + _SURNAMES.pick(rng) + rng.choice(VILLAGE_TAILS)
    return f"{COUNTY_PREFIX}{township_name}{village}村{rng.randint(1, 260)}号"


# --- organisations (fleets) ------------------------------------------------------------------------

ORG_WORDS = [
    "顺达", "通达", "速达", "捷通", "宏运", "鑫源", "美达", "安顺", "佳和", "万通", "恒信", "汇丰",
    "众诚", "华速", "快行", "优送", "城达", "兴旺", "福满", "吉祥",
]  # fmt: skip
ORG_TRADES = [
    ("外卖配送服务有限公司", 4.0), ("快递服务有限公司", 3.0), ("同城配送有限公司", 2.0),
    ("物流有限公司", 2.0), ("跑腿服务部", 1.0), ("电子商务有限公司", 1.0), ("商贸有限公司", 1.0),
    ("邮政快递揽投部", 0.5), ("供水服务站", 0.3), ("物业服务有限公司", 0.7),
]  # fmt: skip
_ORG_TRADES = WeightedTable(ORG_TRADES)


def organisation_name(rng: random.Random, *, township_name: str) -> str:
    place = "玉田县" if rng.random() < 0.6 else f"玉田县{township_short(township_name)}"
    return f"{place}{rng.choice(ORG_WORDS)}{_ORG_TRADES.pick(rng)}"


# --- bikes -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Brand:
    name: str
    manufacturer: str
    maker_code: str  # first 4 digits of the frame number (demo values; 1757 as in docs/domain.md#frame-numbers)
    motor_prefix: str
    models: tuple[str, ...]
    price_range: tuple[int, int]  # yuan
    share: float  # market share weight


BRANDS: list[Brand] = [
    Brand("雅迪", "雅迪科技集团有限公司", "1757", "YD",
          ("TDT2312Z", "TDT1205Z", "TDT1165Z", "TDT2015Z", "TDT2157Z", "TDT1276Z"), (2200, 4800), 24.0),
    Brand("爱玛", "爱玛科技集团股份有限公司", "1826", "AM",
          ("TDT1128Z", "TDT1193Z", "TDT1305Z", "TDT2036Z", "TDT1410Z"), (2000, 4500), 20.0),
    Brand("台铃", "台铃科技股份有限公司", "1693", "TL",
          ("TDT1035Z", "TDT1096Z", "TDT2206Z", "TDT1183Z"), (2000, 4200), 12.0),
    Brand("新日", "江苏新日电动车股份有限公司", "1517", "XR",
          ("TDT1227Z", "TDT1279Z", "TDT2010Z"), (1800, 3800), 6.0),
    Brand("绿源", "浙江绿源电动车有限公司", "1642", "LY",
          ("TDT1318Z", "TDT2103Z", "TDT1150Z"), (2200, 4200), 5.0),
    Brand("九号", "九号科技有限公司", "1951", "NB",
          ("TDT1910Z", "TDT1950Z", "TDT2090Z"), (3300, 6000), 6.0),
    Brand("小牛", "江苏小牛电动科技有限公司", "1908", "NU",
          ("TDT0601Z", "TDT1110Z", "TDT1825Z"), (3000, 6000), 4.0),
    Brand("小刀", "小刀科技股份有限公司", "1735", "XD",
          ("TDT1208Z", "TDT1302Z", "TDT2052Z"), (1600, 3500), 4.0),
    Brand("立马", "立马车业集团有限公司", "1659", "LM",
          ("TDT1135Z", "TDT1290Z"), (1800, 3600), 3.0),
    Brand("绿佳", "浙江绿佳车业有限公司", "1770", "LJ",
          ("TDT1016Z", "TDT1233Z"), (1600, 3200), 3.0),
    Brand("新大洲本田", "新大洲本田摩托有限公司", "1588", "SD",
          ("TDT0125Z", "TDT0236Z"), (3500, 6000), 2.0),
    Brand("飞鸽", "天津飞鸽车业发展有限公司", "1206", "FG",
          ("TDT0628Z", "TDT0931Z"), (1500, 2800), 3.0),
    Brand("富士达", "天津富士达自行车有限公司", "1219", "FS",
          ("TDT0812Z", "TDT0967Z"), (1500, 2800), 2.5),
    Brand("哈啰", "哈啰智能科技(天津)有限公司", "1985", "HL",
          ("TDT2101Z", "TDT2230Z"), (2000, 4000), 2.0),
    Brand("金箭", "天津金箭车业有限公司", "1231", "JJ",
          ("TDT0722Z", "TDT0815Z"), (1500, 3000), 1.5),
]  # fmt: skip
_BRANDS = WeightedTable([(brand, brand.share) for brand in BRANDS])

COLOURS: list[tuple[str, float]] = [
    ("白", 22), ("黑", 20), ("灰", 9), ("银", 8), ("红", 8), ("蓝", 8), ("哑光黑", 6), ("珍珠白", 5),
    ("粉", 4), ("绿", 3), ("黄", 2), ("橙", 2), ("紫", 1.5), ("香槟金", 1.5),
]  # fmt: skip
_COLOURS = WeightedTable(COLOURS)
# Motor makers' numbers carry the pack voltage; 48 V is the GB 17761-2018 maximum.
VOLTAGES = [("48", 80.0), ("36", 12.0), ("60", 8.0)]
_VOLTAGES = WeightedTable(VOLTAGES)

# Frame/motor serials are 8 digits from 10000000 up (counter-typed test serials start at 1).
_SERIAL_BASE = 10_000_000
_FRAME_PERM = KeyedPermutation(90_000_000, key=0x17761)
_MOTOR_PERM = KeyedPermutation(90_000_000, key=0x2018)
_POLICY_PERM = KeyedPermutation(1 << 32, key=0xB0A)


def pick_brand(rng: random.Random) -> Brand:
    return _BRANDS.pick(rng)


def pick_colour(rng: random.Random) -> str:
    return _COLOURS.pick(rng)


def price(rng: random.Random, brand: Brand) -> str:
    low, high = brand.price_range
    hundreds = rng.randint(low // 100, high // 100)
    yuan = hundreds * 100 - (1 if rng.random() < 0.6 else 0)  # ¥2,999 more often than ¥3,000
    return f"{max(yuan, low)}.00"


def ccc_certificate_no(brand: Brand, model: str, production_year: int) -> str:
    """CCC certificates are issued per model, so every bike of a model carries the same number."""
    year = min(production_year, max(2019, production_year - (sum(map(ord, model)) % 3)))
    digest = (int(brand.maker_code) * 7919 + sum(ord(c) * (i + 1) for i, c in enumerate(model))) % 1_000_000
    return f"{year}011119{digest:06d}"


def frame_number(brand: Brand, production_year: int, serial: int) -> str:
    """15 digits: 4-digit maker code, type digit 2 (e-bike), 2-digit production year, 8-digit serial."""
    return f"{brand.maker_code}2{production_year % 100:02d}{serial:08d}"


def frame_serial_for_index(index: int) -> int:
    return _SERIAL_BASE + _FRAME_PERM(index)


def motor_number(brand: Brand, production_year: int, voltage: str, serial: int) -> str:
    return f"{brand.motor_prefix}{production_year % 100:02d}{voltage}{serial:08d}"


def motor_serial_for_index(index: int) -> int:
    return _SERIAL_BASE + _MOTOR_PERM(index)


def pick_voltage(rng: random.Random) -> str:
    return _VOLTAGES.pick(rng)


def policy_number(starts_on: datetime.date, index: int) -> str:
    """Same shape as services.insurance.policy_issue: BX + date + 8 hex digits."""
    return f"BX{starts_on:%Y%m%d}{_POLICY_PERM(index):08X}"


# Documents presented at a counter registration (docs/domain.md#materials).
DOCUMENTS_CONFORMING = ["id_card", "invoice", "ccc_certificate"]
DOCUMENTS_NO_INVOICE = ["id_card", "statement_of_origin", "ccc_certificate"]
DOCUMENTS_TEMPORARY = ["id_card", "statement_of_origin"]
DOCUMENTS_ORGANISATION = ["business_licence", "letter_of_authority", "agent_id_card", "invoice", "ccc_certificate"]
