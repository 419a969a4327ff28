"""Extraction start-up time and throughput.

usage: python benchmarks/extract_bench.py [--seconds 3] [--cold]

start-up = load_lexicon() + Extractor() + tokenizer initialisation (what a fresh process pays
before its first message); --cold first deletes the cached trimmed jieba dictionary so the
one-off build is measured too.  Throughput is single-process over a mix of typed and
voice-style messages, after start-up; it is printed per wall-clock second and per CPU second
(the latter is what to compare on a busy shared machine).
"""
from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MESSAGES = [
    "王主任说下个月招标，重点推二代导管，价格可以谈。",
    "今天去华山医院设备科做了产品演示，张科长要求提供临床试用报告，周三前发过去。",
    "李院长对报价有异议，觉得比美敦力贵了百分之十五，下周三前把参数对比表发给他。",
    "瑞金医院的合同已经盖章了，总金额一百二十万，下周安排装机。",
    "嗯那个市一院心内科刘主任刚加上微信然后约了下周一上午去科室拜访",
    "省人民医院骨科的单子丢了，最后选了威高，价格比我们低不少。",
    "回款还差40万没到，已经逾期二十天了，财务那边说在走审批。",
    "收到，谢谢",
    "明早10点去省肿瘤医院见胡主任，带上新版彩页和报价。",
    "客户提到迈瑞和联影都来过了，我们的优势是售后响应快，明天把服务承诺书给他。",
    "就是湘雅二院的欧阳主任说预算只有50w然后让我们周五之前出个方案",
    "好的",
]
# templates × names give ~2,000 distinct messages, so per-text memos cannot flatter the figure
HOSPITALS = ["华山医院", "市一院", "省妇幼", "湘雅二院", "县人民医院", "南京市第一医院", "瑞金医院", "二院", "和平医院",
             "城东卫生院"]
PEOPLE = ["王主任", "欧阳主任", "李院长", "张科长", "黄护士长", "赵工", "刘总", "冯老师"]
TEMPLATES = [
    "今天去{h}设备科见了{p}，对方说预算有{n}万，下周三前把报价发过去。",
    "{h}的{p}说下个月招标，我们主推二代导管，价格可以谈",
    "嗯那个{h}心内科{p}刚加上微信然后约了周五上午去科室拜访",
    "{h}的单子丢了，最后选了威高，价格比我们低{n}个点",
    "{p}对售后不太满意，明天下午三点去{h}回访",
]


def corpus() -> list[str]:
    out = list(MESSAGES)
    for t in TEMPLATES:
        for h in HOSPITALS:
            for p in PEOPLE:
                for n in (30, 45, 80, 120, 5):
                    out.append(t.format(h=h, p=p, n=n))
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--cold", action="store_true", help="rebuild the cached jieba dictionary first")
    args = ap.parse_args()

    if args.cold:
        from nlp.segment import cache_dir
        for path in cache_dir().glob("genjin-jieba-*"):
            path.unlink()
        for path in cache_dir().glob("jieba.u*.cache"):
            path.unlink()

    t0, c0 = time.perf_counter(), time.process_time()
    from nlp.extract import Extractor
    from nlp.lexicon import load_lexicon

    lexicon = load_lexicon()
    t_lex = time.perf_counter()
    extractor = Extractor(lexicon)
    extractor.segmenter.initialize()
    t_tok, c_tok = time.perf_counter(), time.process_time()
    now = datetime(2026, 11, 23, 9, 30)
    extractor.extract(MESSAGES[0], now)
    t_first = time.perf_counter()

    messages = corpus()
    n, start, cpu_start = 0, time.perf_counter(), time.process_time()
    deadline = start + args.seconds
    while time.perf_counter() < deadline:
        for msg in messages[n % len(messages):][:200] or messages[:200]:
            extractor.extract(msg, now)
            n += 1
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start

    print(f"startup seconds   {t_tok - t0:.3f}  (imports+lexicon {t_lex - t0:.3f}, extractor+tokenizer "
          f"{t_tok - t_lex:.3f}; first message {t_first - t_tok:.3f}; CPU {c_tok - c0:.3f})")
    print(f"msgs/s            {n / elapsed:,.0f}  ({n} messages in {elapsed:.2f} s wall, single process)")
    print(f"msgs/CPU-s        {n / cpu:,.0f}  ({cpu:.2f} CPU s)")
    print(f"mean latency ms   {1000 * elapsed / n:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
