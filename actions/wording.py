"""The words of a call: the responses the call flow names, and the words it looks for.

The flow (actions/flow.py) decides a `lead` and a `question` for each turn; the tables here
say which domain.yml responses each one stands for. `python -m actions.rulegen` turns them
into the Rasa rules of data/rules/moves.yml.  The patterns at the end are the customer's
words the flow reads itself, whatever the classifier made of them.
"""

from __future__ import annotations

import re

# --- what the bot says ----------------------------------------------------------------

# What the bot says before its question ("lead") and the question itself. Rasa rules
# (data/rules/moves.yml, generated from these tables by `python -m actions.rulegen`) turn
# the `lead` and `question` slots that the actions set into these responses, so every
# response of domain.yml is said by Rasa itself. Control payloads live in the templates:
# `listen` on questions, `barge_in: false` on disclosures, `hangup`/`transfer` on endings.
_PITCH_MARKETING = ("utter_disclose_features", "utter_disclose_price", "utter_disclose_trial",
                    "utter_disclose_usage", "utter_disclose_cancel")
_PITCH_NO_TRIAL = ("utter_disclose_features", "utter_disclose_price", "utter_disclose_usage",
                   "utter_disclose_cancel")
_PITCH_KEEP = ("utter_trial_reminder", "utter_disclose_features", "utter_disclose_usage",
               "utter_disclose_cancel")
LEADS: dict[str, tuple[str, ...]] = {
    "nothing": (),
    "greeting": ("utter_greeting",),
    "sorry": ("utter_sorry_repeat",),
    "who": ("utter_who_we_are",),
    "still_there": ("utter_still_there",),
    "notice": ("utter_notice",),
    "sorry_notice": ("utter_sorry_repeat", "utter_notice"),
    "notice_more_info": ("utter_notice_more_info",),
    "pitch": _PITCH_MARKETING,
    "pitch_no_trial": _PITCH_NO_TRIAL,
    "pitch_keep": _PITCH_KEEP,
    "sorry_pitch": ("utter_sorry_repeat", *_PITCH_MARKETING),
    "sorry_pitch_no_trial": ("utter_sorry_repeat", *_PITCH_NO_TRIAL),
    "sorry_pitch_keep": ("utter_sorry_repeat", *_PITCH_KEEP),
    "disclose_price": ("utter_disclose_price",),
    "disclose_cancel": ("utter_disclose_cancel",),
    "trial_reminder": ("utter_trial_reminder",),
    "objection_price": ("utter_objection_price",),
    "objection_distrust": ("utter_objection_distrust",),
    "go_on": ("utter_go_on",),
    # An agent handed the call back to confirm their sale (actions/flowhandback.py).
    "handback": ("utter_handback",),
    "handback_pitch": ("utter_handback", *_PITCH_MARKETING),
    "handback_pitch_no_trial": ("utter_handback", *_PITCH_NO_TRIAL),
    "handback_pitch_keep": ("utter_handback", *_PITCH_KEEP),
    # endings: the template carries {"hangup": true} or {"transfer": …}
    "end_wrong_person": ("utter_wrong_person",),
    "end_family_no_authority": ("utter_family_no_authority",),
    "end_verification_failed": ("utter_verification_failed",),
    "end_no_permission": ("utter_no_permission",),
    "end_notice": ("utter_notice_bye",),
    "end_consent": ("utter_consent_done",),
    "end_keep": ("utter_keep_done",),
    "end_decline": ("utter_decline_bye",),
    "end_trial_cancelled": ("utter_trial_cancelled",),
    "end_undecided": ("utter_undecided_how_to_cancel",),
    "end_survey": ("utter_survey_thanks",),
    "end_transfer": ("utter_transfer",),
    "end_complaint": ("utter_complaint_transfer",),
    "end_dnc": ("utter_dnc_confirm",),
    "end_callback": ("utter_callback_confirm",),
    "end_silence": ("utter_bye_silence",),
    "end_not_understood": ("utter_bye_not_understood",),
    "end_goodbye": ("utter_goodbye",),
    "end_handback_refused": ("utter_handback_refused",),
}
QUESTIONS: dict[str, str | None] = {
    "nothing": None,
    "identity": "utter_ask_identity",
    "family_authority": "utter_ask_family_authority",
    "id_last4": "utter_ask_id_last4",
    "id_retry": "utter_id_retry",
    "permission_marketing": "utter_ask_permission_marketing",
    "permission_survey": "utter_ask_permission_survey",
    "permission_confirm": "utter_ask_permission_confirm",
    "notice_heard": "utter_ask_notice_heard",
    "survey_question": "utter_survey_question",
    "survey_reason": "utter_ask_survey_reason",
    "survey_open": "utter_survey_open",
    "consent": "utter_ask_consent",
    "explicit": "utter_ask_explicit",
    "keep": "utter_ask_keep",
    "readback": "utter_readback",
    "readback_keep": "utter_readback_keep",
    "keyed_confirm": "utter_ask_keyed_confirm",
    "decline_reason": "utter_ask_decline_reason",
    "callback_time": "utter_ask_callback_time",
    "confirm_dnc": "utter_confirm_dnc",
    "confirm_complaint": "utter_confirm_complaint",
    "confirm_human": "utter_confirm_human",
}

# The questions answered with the ID digits: the channel masks their answers wherever
# they are shown (the deciding action tells it, `bot.channel.private_answer_payload`).
PRIVATE_QUESTIONS = frozenset({"id_last4", "id_retry"})

# Which mandatory disclosures each response carries (rule 3, "approved script").
DISCLOSURES: dict[str, tuple[str, ...]] = {
    "utter_disclose_features": ("features",),
    "utter_disclose_price": ("price",),
    "utter_disclose_trial": ("trial_end", "price"),
    "utter_disclose_usage": ("usage",),
    "utter_disclose_cancel": ("cancel",),
    "utter_trial_reminder": ("trial_end", "price"),
}

SCALE_HINTS = {
    "score": "请用1到5分打分，5分表示非常满意。",
    "satisfaction": "请回答满意、一般或者不满意。",
}

DEFAULT_OPEN_QUESTION = "最后，您对我们还有什么意见或建议吗？"


# --- what the flow listens for ---------------------------------------------------------

# Words of a request to repeat ("你说什么", "再说一遍", "没听清", "说慢点").
# "没什么建议" and "没啥" are answers, not questions.
REPEAT_REQUEST = re.compile(
    r"(?<!没)什么|(?<!没)啥|再说|再讲|重复|没听|听不|不明白|没明白|慢点|大声")
# At the offer, the other words of the classifier's not_understand examples ask to hear it
# again too (我没懂, 信号不好, 声音太小了, 说慢一点, 喂喂).  A not_understand with none of
# them there is nonsense the classifier put nearest a question (Whisper's 员红 for a
# hummed 哦哦, 你啊 for 啊嗯), not a request (actions/flow.py, `_no_answer_made_out`).
HEAR_AGAIN_REQUEST = re.compile(REPEAT_REQUEST.pattern + r"|懂|信号|声音|杂音|慢一|太快|喂")

# Words of the requests the flow honours wherever they come (first match wins).
CONTROL_WORDS = (
    ("complain", re.compile(r"投诉|举报")),
    ("do_not_call", re.compile(r"别再打|不要再打|别打了|不要打了|别给我打|不要给我打")),
    ("request_human",
     re.compile(r"转人工|人工客服|人工服务|找人工|要人工|接人工|人工坐席|真人客服")),
)

# A reply to "您是说…对吗？" that starts with a no is one, whatever words follow.
SAYS_NO = re.compile(r"(?:不是|不对|没有|没说|我没|不不)")
# ...and to "您是要转人工客服吗？" also a "no need" ("不用，你说吧"): not said of a do-not-call
# request, where "不要再打了" is the request itself.
SAYS_NO_NEED = re.compile(r"(?:不用|不需要|不要|不找|别转|不转)")

# An utterance that opens with an ordinary answer to the bot's question ("可以你说", "好的",
# "不方便"): a control intent the classifier read into it, without the request's own words,
# is contradicted by the rest of the utterance and is asked back before it is acted on.
ANSWER_OPENING = re.compile(
    r"^[嗯哦啊呃喂额唉，,。 ]*(?:可以|好的?|行|是的?|对|没问题|方便|你说|说吧|请说|请讲|讲吧"
    r"|不方便|没空|不用|不需要|不要|不行|没兴趣)")
