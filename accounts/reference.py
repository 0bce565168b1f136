"""Reference data for the demo county, Yutian (玉田县, 130229), from docs/domain.md#reference-data.

Township codes and names are official. The bureau's station names are not public: the demo
stations are named after their towns and marked `is_demo`. Each station gets a plate-prefix letter
(I and O are skipped, as on Chinese plates, to avoid confusion with 1 and 0).
"""

COUNTY_CODE = "130229"

TOWNSHIPS: list[tuple[str, str]] = [
    ("130229001", "无终街道"),
    ("130229100", "玉田镇"),
    ("130229101", "亮甲店镇"),
    ("130229102", "鸦鸿桥镇"),
    ("130229103", "窝洛沽镇"),
    ("130229104", "石臼窝镇"),
    ("130229105", "虹桥镇"),
    ("130229106", "散水头镇"),
    ("130229107", "林南仓镇"),
    ("130229108", "林西镇"),
    ("130229109", "杨家板桥镇"),
    ("130229110", "彩亭桥镇"),
    ("130229111", "孤树镇"),
    ("130229112", "大安镇镇"),
    ("130229113", "唐自头镇"),
    ("130229114", "郭家屯镇"),
    ("130229115", "杨家套镇"),
    ("130229116", "陈家铺镇"),
    ("130229201", "林头屯乡"),
    ("130229203", "潮洛窝乡"),
    ("130229205", "郭家桥乡"),
    ("130229400", "河北玉田经济开发区"),
    ("130229401", "河北唐山国家农业科技园区"),
]

# (station code, township code, plate letter). 20 stations; the three smallest areas are served by
# neighbouring stations.
STATIONS: list[tuple[str, str, str]] = [
    ("13022901", "130229001", "A"),
    ("13022902", "130229100", "B"),
    ("13022903", "130229101", "C"),
    ("13022904", "130229102", "D"),
    ("13022905", "130229103", "E"),
    ("13022906", "130229104", "F"),
    ("13022907", "130229105", "G"),
    ("13022908", "130229106", "H"),
    ("13022909", "130229107", "J"),
    ("13022910", "130229108", "K"),
    ("13022911", "130229109", "L"),
    ("13022912", "130229110", "M"),
    ("13022913", "130229111", "N"),
    ("13022914", "130229112", "P"),
    ("13022915", "130229113", "Q"),
    ("13022916", "130229114", "R"),
    ("13022917", "130229115", "S"),
    ("13022918", "130229116", "T"),
    ("13022919", "130229205", "U"),
    ("13022920", "130229400", "V"),
]


def station_name(township_name: str) -> str:
    short = township_name
    for suffix in ("街道", "镇", "乡"):
        if short.endswith(suffix) and len(short) > len(suffix) + 1:
            short = short[: -len(suffix)]
            break
    if short.startswith("河北玉田"):
        short = short.removeprefix("河北玉田")
    return f"玉田县公安局{short}派出所"
