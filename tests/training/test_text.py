"""The one tokenizer: exact word lists for BM25 (index_terms) and for the router (words).

Expected lists are worked out from the rules in training/text.py: lower-case; Latin words/numbers kept
whole (joined by . _ -), plurals folded; Chinese cut by jieba (precise mode for ``words``, search mode plus
the single characters of multi-character words for ``index_terms``); stopwords (the union of the old router
and BM25 lists) dropped.
"""

from __future__ import annotations

from training.text import STOPWORDS, beyond, fact_values, index_terms, is_quantity, scope, words


def test_index_terms_split_chinese_words_add_their_characters_and_drop_stopwords() -> None:
    # 是/怎样/的 and what/are/the are stopwords; refunds/policies fold to singular; SKU-123 and 3.5 stay
    # whole; the characters of 退货, 政策 and 价格 follow the words (元 is one character: nothing to add).
    assert index_terms("退货政策是怎样的? What are the Refunds policies? SKU-123 价格3.5元") == [
        "退货", "政策", "refund", "policy", "sku-123", "价格", "3.5", "元",
        "退", "货", "政", "策", "价", "格",
    ]  # fmt: skip


def test_index_terms_search_mode_adds_sub_words() -> None:
    # search mode: the dictionary sub-word 风扇 before the whole word 电风扇, then each word's characters
    assert index_terms("电风扇") == ["风扇", "电风扇", "风", "扇", "电", "风", "扇"]


def test_stopwords_are_the_union_of_the_router_and_bm25_lists() -> None:
    # from the router's list (BM25 indexed them before): 请 告诉 多少钱 钱 谁 much many
    assert {"请", "告诉", "多少钱", "钱", "谁", "much", "many"} <= STOPWORDS
    # from BM25's list (the router kept them before): 被 把 让 给 对 从 到 需要 than then
    assert {"被", "把", "让", "给", "对", "从", "到", "需要", "than", "then"} <= STOPWORDS
    assert index_terms("请告诉我多少钱? How much do many lamps cost") == ["lamp", "cost"]


def test_words_are_precise_mode_content_words() -> None:
    assert words("退货政策是怎样的? What are the Refunds policies?") == ["退货", "政策", "refund", "policy"]
    assert words("电风扇") == ["电风扇"]  # precise mode: no sub-words, no single characters
    assert words("老大是谁") == ["老大"] and words("老二是谁") == ["老二"]
    # nothing but stopwords: every word is kept, so two such questions can still be compared
    assert words("是谁?") == ["是", "谁"]
    assert words("") == []


def test_a_numeral_with_a_measure_word_is_a_quantity() -> None:
    assert [w for w in ["一年", "几本", "每次", "两家", "房租", "一共", "年", "半年"] if is_quantity(w)] == [
        "一年",
        "几本",
        "每次",
        "两家",
        "半年",
    ]


def test_beyond_lists_the_codes_places_and_periods_the_training_question_lacks() -> None:
    assert beyond("清泉C3净水器还有多少库存?", "流明净水器的保修期是多久?") == ["c3"]
    assert beyond("云雀咖啡去年在北京开了几家店?", "云雀咖啡有多少家门店?") == ["去年", "北京"]
    assert beyond("极光X5净水器的保修期?", "极光X5净水器的保修期是多久?") == []
    # English words are not codes: a paraphrase in English asks about nothing new
    assert beyond("Who is the oldest child?", "Who is the eldest?") == []
    assert beyond("What did it cost in 2019?", "What does it cost?") == ["2019"]


def test_scope_names_the_place_or_period_a_question_narrows_itself_to() -> None:
    assert scope("云雀咖啡在北京有几家门店?") == ("北京",)
    assert scope("流明明年会推出什么新产品?") == ("明年",)  # jieba cuts 流/明明/年: periods match the text
    assert scope("云雀咖啡去年在上海的营业额是多少?") == ("去年", "上海")
    assert scope("What will Lumen launch next year?") == ("next year",)
    # generic places, the present and paraphrases narrow nothing
    for q in [
        "流明的生产基地位于哪座城市?",
        "第一次上门安装要付钱吗?",
        "现在担任流明首席执行官的是哪位?",
        "当初是哪两个人办起了云雀咖啡?",
    ]:
        assert scope(q) == (), q


def test_fact_values_are_numbers_and_codes_in_english_and_latin_tokens_in_chinese() -> None:
    assert fact_values("The X5 costs 3999 yuan; mail service@lumen-water.cn") == [
        "x5",
        "3999",
        "service@lumen-water.cn",
    ]
    assert fact_values("流明的CEO是陈嘉禾,电话400-826-5188") == ["ceo", "400-826-5188"]
