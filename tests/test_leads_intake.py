"""Lead intake: phone/grade normalisation, quality, file import (CSV/GBK/XLSX), API body, chat form."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from handlers.leads.files import parse_lead_file
from handlers.leads.intake import (
    LeadInput,
    normalize_grade,
    normalize_phone,
    parse_api_payload,
    parse_chat_lead,
    quality_problems,
)

HEADER = "id,hospital,department,contact,phone,region,product_line,grade,source,created_at\n"


@pytest.mark.parametrize("raw, expected", [
    ("13812345678", "13812345678"),
    ("+86 138 1234 5678", "13812345678"),
    ("86-138-1234-5678", "13812345678"),
    ("0086 13812345678", "13812345678"),
    ("１３８１２３４５６７８", "13812345678"),  # full-width digits from a pasted cell
    ("021-12345678", "021-12345678"),
    ("(021) 1234 5678", "021-12345678"),
    ("+86 21 12345678", "021-12345678"),
    ("0571-8888888", "0571-8888888"),
    ("0571-88888888-123", "0571-88888888-123"),
    ("010-88888888转8001", "010-88888888-8001"),
    ("12812345678", None),  # no 12x mobile prefix
    ("1381234567", None),  # ten digits
    ("12345678", None),  # landline without area code
    ("021-1234567", None),  # 02x takes eight digits
    ("0571-123456", None),
    ("138123456789", None),
    ("电话待补", None),
    ("", None),
])
def test_phone(raw: str, expected: str | None) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize("raw, expected", [
    ("三甲", "三甲"), ("三级甲等", "三甲"), ("3A", "三甲"), ("3甲", "三甲"), ("三甲医院", "三甲"), ("Ⅲ级甲等", "三甲"),
    ("三级", "三级"), ("二级乙等", "二乙"), ("2B", "二乙"), ("民营", "民营"), ("", ""),
])
def test_grade(raw: str, expected: str) -> None:
    assert normalize_grade(raw) == expected


def test_quality_problems_in_chinese() -> None:
    assert quality_problems(LeadInput(hospital="瑞金医院", phone="13812345678").normalized()) == []
    assert quality_problems(LeadInput(phone="123").normalized()) == [
        "缺少医院", "电话号码无效：123（需手机号或带区号的座机）"]
    assert quality_problems(LeadInput(hospital="x").normalized(), required=("hospital", "contact")) == ["缺少联系人"]


def _write(tmp_path: Path, text: str, encoding: str = "utf-8", name: str = "leads.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_csv_with_bom_blank_lines_and_chinese_headers(tmp_path: Path) -> None:
    text = ("\ufeff线索编号,医院,科室,联系人,手机,省份,产品线,医院等级,来源,创建时间\n"
            "L1,瑞金医院,心内科,王主任,138 1234 5678,上海市,心血管,三级甲等,官网,2024-05-01 09:30\n"
            "\n"
            ",,,,,,,,,\n"
            "L2,南京鼓楼医院,,,025-12345678,江苏省,心血管,,,\n")
    leads, errors = parse_lead_file(_write(tmp_path, text))
    assert errors == []
    assert [lead.external_id for lead in leads] == ["L1", "L2"]
    first = leads[0]
    assert (first.phone, first.region, first.grade) == ("13812345678", "上海", "三甲")
    assert first.created_at == datetime(2024, 5, 1, 1, 30, tzinfo=timezone.utc)  # Beijing time, aware


def test_gbk_csv(tmp_path: Path) -> None:
    text = HEADER + "L1,北京协和医院,放射科,李医生,010-88888888,北京,影像,三甲,展会,\n"
    leads, errors = parse_lead_file(_write(tmp_path, text, encoding="gbk"))
    assert errors == [] and leads[0].hospital == "北京协和医院" and leads[0].department == "放射科"


def test_csv_one_bad_row_imports_nothing_and_names_the_line(tmp_path: Path) -> None:
    text = (HEADER + "L1,瑞金医院,,,13812345678,上海,心血管,,,2024-05-01\n"
            "\n"
            "L2,华山医院,,,13912345678,上海,心血管,,,昨天下午\n"
            "L3,中山医院,,,bad phone,上海,心血管,,,\n")  # a bad phone is quality (quarantine), not format
    leads, errors = parse_lead_file(_write(tmp_path, text))
    assert leads == []
    assert [(e.line, e.field) for e in errors] == [(4, "created_at")]
    assert str(errors[0]).startswith("第4行 创建时间：无法识别的时间")


def test_csv_header_and_shape_errors(tmp_path: Path) -> None:
    leads, errors = parse_lead_file(_write(tmp_path, "id,hosptial,phone\nL1,x,13812345678\n"))
    assert leads == [] and [str(e) for e in errors] == ["第1行：未知的列 'hosptial'"]
    leads, errors = parse_lead_file(_write(tmp_path, "hospital,phone\nx,13812345678,extra\nx,13812345678\nx,13812345678\n"))
    assert [(e.line, e.problem) for e in errors] == [(2, "有3列，表头只有2列")]
    _, errors = parse_lead_file(_write(tmp_path, "id,hospital\nA,x\nA,y\n"))
    assert [(e.line, e.field) for e in errors] == [(3, "external_id")]
    _, errors = parse_lead_file(_write(tmp_path, ""))
    assert errors[0].line == 1


def test_xlsx_round_trip(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["编号", "医院", "科室", "联系人", "电话", "区域", "产品线", "等级", "来源", "创建时间"])
    sheet.append(["X1", "瑞金医院", "心内科", "王主任", 13812345678, "上海", "心血管", "3A", "官网", datetime(2024, 5, 1, 9, 30)])
    sheet.append([None] * 10)
    sheet.append(["X2", "华山医院", None, None, "021-12345678", "上海", "心血管", None, None, None])
    path = tmp_path / "leads.xlsx"
    book.save(path)
    leads, errors = parse_lead_file(path)
    assert errors == []
    assert [(lead.external_id, lead.phone, lead.grade) for lead in leads] == [
        ("X1", "13812345678", "三甲"), ("X2", "021-12345678", "")]
    assert leads[0].created_at == datetime(2024, 5, 1, 1, 30, tzinfo=timezone.utc)

    sheet.append(["X3", "中山医院", None, None, "13812345678", "上海", "心血管", None, None, "not a date"])
    book.save(path)
    leads, errors = parse_lead_file(path)
    assert leads == [] and [(e.line, e.field) for e in errors] == [(5, "created_at")]


def test_not_an_xlsx(tmp_path: Path) -> None:
    leads, errors = parse_lead_file(_write(tmp_path, "garbage", name="x.xlsx"))
    assert leads == [] and "xlsx" in errors[0].problem


def test_api_payload_single_and_list() -> None:
    leads, errors = parse_api_payload({"id": "A1", "hospital": "瑞金医院", "phone": "+8613812345678"})
    assert errors == [] and leads[0].external_id == "A1" and leads[0].phone == "13812345678"
    leads, errors = parse_api_payload([
        {"hospital": "瑞金医院", "phone": "13812345678", "created_at": "2024-05-01T09:30:00+08:00"},
        {"hospital": ["x"], "colour": "red"},
        "not an object",
        {"hospital": "x", "created_at": "soon"},
    ])
    assert leads == []
    assert [(e["loc"], e["type"]) for e in errors] == [
        (["body", 1, "colour"], "extra_forbidden"),
        (["body", 1, "hospital"], "string_type"),
        (["body", 2], "dict_type"),
        (["body", 3, "created_at"], "value_error"),
    ]
    assert parse_api_payload([])[1][0]["loc"] == ["body"]


def test_chat_positional_form() -> None:
    lead = parse_chat_lead("#线索 瑞金医院 心内科 王主任 138-1234-5678 心血管 三级甲等 展会")
    assert lead == LeadInput(hospital="瑞金医院", department="心内科", contact="王主任", phone="13812345678",
                             product_line="心血管", grade="三甲", source="展会")
    short = parse_chat_lead("#线索 华山医院 - 李医生 021-12345678")
    assert (short.department, short.contact, short.source) == ("", "李医生", "chat")
    assert parse_chat_lead("今天去了瑞金医院") is None


def test_chat_free_text_uses_the_extractor() -> None:
    seen: list[str] = []

    def extract(text: str) -> SimpleNamespace:
        seen.append(text)
        return SimpleNamespace(account="瑞金医院", departments=["心内科"], contacts=["王主任"])

    lead = parse_chat_lead("#线索 瑞金医院心内科王主任想了解心血管新品，电话13812345678，三甲", extract, ["心血管", "影像"])
    assert seen and lead.hospital == "瑞金医院" and lead.contact == "王主任" and lead.department == "心内科"
    assert (lead.phone, lead.product_line, lead.grade, lead.source) == ("13812345678", "心血管", "三甲", "chat")
    assert lead.note.startswith("瑞金医院心内科")
