"""Deterministic recognizers for personal data that has a shape (the rules layer of redaction).

Each recognizer is a function ``text -> Iterator[Span]`` registered in ``RECOGNIZERS``. They cover
the HIPAA Safe Harbor identifiers that can be found by shape: e-mail, phone/fax, SSN, payment
cards (Luhn), IBAN (mod 97), IPv4/IPv6, MAC, URLs, dates, ZIP/postcodes and street addresses,
and identifiers recognised by their label (MRN, member ID, account, licence, passport, VIN,
serials). Where a shape is ambiguous the checksum or a nearby label decides; labelled cases
lean towards redacting (a missed identifier is a leak, an extra placeholder is not).

Layout between a label and its value varies (dot leaders, fill-in lines, table bars, JSON
quotes): ``find_all`` blanks those characters to spaces of the same length before matching, so
every offset still indexes the original text.

Deterministic name/organisation/place heuristics (titles, ``Patient:``/``Dear``/sign-off labels,
chat speakers, middle initials, common given names, company suffixes, "City, ST 12345") also
live here; the model layer in ``redact.py`` finds the rest.

Cost: a few dozen compiled regular expressions written to run in linear time (tested on
pathological input); no imports beyond the standard library.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    type: str
    detector: str


# Types that have a shape: the rules layer must find every one of them.
SHAPED_TYPES = (
    "EMAIL", "PHONE", "SSN", "CREDIT_CARD", "IBAN", "IP_ADDRESS", "URL", "DATE", "ZIP",
    "MRN", "HEALTH_PLAN", "ACCOUNT", "LICENSE", "PASSPORT", "VEHICLE", "DEVICE", "ID", "AGE",
)
# Types without a shape (model layer, plus the heuristics below).
FREE_TYPES = ("PERSON", "ADDRESS", "ORGANIZATION", "LOCATION")
ALL_TYPES = SHAPED_TYPES + FREE_TYPES

# When two spans overlap they are merged; the merged span takes the type of the most specific
# detector (checksummed shapes first, heuristics last).
PRIORITY = {t: i for i, t in enumerate((
    "IBAN", "CREDIT_CARD", "SSN", "EMAIL", "URL", "IP_ADDRESS", "VEHICLE", "MRN", "HEALTH_PLAN",
    "PASSPORT", "LICENSE", "ACCOUNT", "DEVICE", "ZIP", "DATE", "PHONE", "ID", "AGE", "ADDRESS",
    "PERSON", "ORGANIZATION", "LOCATION",
))}


def _m(pattern: str, flags: int = 0) -> re.Pattern:
    return re.compile(pattern, flags)


# --------------------------------------------------------------------------------------------
# Checksums
# --------------------------------------------------------------------------------------------

def luhn_ok(digits: str) -> bool:
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# ISO 13616 lengths per country (the registry's published table).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}


def iban_ok(compact: str, check_length: bool = True) -> bool:
    """Mod-97 check; with ``check_length`` also the country's registered length."""
    s = compact.upper()
    if len(s) < 15 or len(s) > 34 or not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]+", s):
        return False
    want = IBAN_LENGTHS.get(s[:2])
    if check_length and want is not None and len(s) != want:
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


_VIN_VALUES = {**{str(d): d for d in range(10)},
               **dict(zip("ABCDEFGH", range(1, 9))), **dict(zip("JKLMN", range(1, 6))),
               "P": 7, "R": 9, **dict(zip("STUVWXYZ", range(2, 10)))}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def vin_ok(vin: str) -> bool:
    """North American VIN check digit (position 9)."""
    v = vin.upper()
    if len(v) != 17 or any(c not in _VIN_VALUES for c in v):
        return False
    total = sum(_VIN_VALUES[c] * w for c, w in zip(v, _VIN_WEIGHTS))
    check = total % 11
    return v[8] == ("X" if check == 10 else str(check))


# --------------------------------------------------------------------------------------------
# E-mail, URL, IP, MAC
# --------------------------------------------------------------------------------------------

_EMAIL = _m(r"(?<![\w.+-])[\w.+'%-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,24}\b")
# Obfuscated forms: "jane dot doe at example dot com", "jane[at]example.com".
_EMAIL_OBF = _m(r"(?i)(?<![\w.+-])[\w.+-]+\s*(?:\[at\]|\(at\)|\{at\}|\s+at\s+)\s*[\w-]+(?:\s*(?:\.|\[dot\]|\(dot\)|\s+dot\s+)\s*[\w-]+)*\s*(?:\.|\[dot\]|\(dot\)|\s+dot\s+)\s*(?:com|org|net|edu|gov|io|co|uk|de|fr|info|biz)\b")


def find_emails(text: str) -> Iterator[Span]:
    for m in _EMAIL.finditer(text):
        yield Span(m.start(), m.end(), "EMAIL", "email")
    for m in _EMAIL_OBF.finditer(text):
        if "@" not in m.group():
            if re.search(r"(?i)\[at\]|\(at\)|\{at\}|\bat\b.*\bdot\b", m.group()):
                yield Span(m.start(), m.end(), "EMAIL", "email")


_TLDS = ("com|org|net|edu|gov|mil|int|info|biz|io|co|us|uk|de|fr|es|it|nl|be|ch|at|se|no|dk|fi|"
         "ie|pl|pt|ca|au|nz|in|jp|cn|ru|br|mx|eu|me|tv|ly|app|dev|health|bank|law|name|online|"
         "site|tech|xyz|ai|gr|cz|hu|ro|sk|si|hr|bg|lt|lv|ee|ua|tr|il|za|sg|hk|tw|kr|ar|cl|pe|"
         "ph|th|vn|id|my|pk|ae|sa|eg|ng|ke|is|lu|li|mt|cy|pl|top|club|shop|store|blog|cloud|"
         "email|life|live|news|clinic|hospital|care|ac|museum|coop|aero|pro|travel|jobs|"
         "mobi|asia|cat|tel|med|doctor|dental|insurance|finance|capital|legal|lawyer|attorney")
_URL_SCHEME = _m(r"(?i)\b(?:https?|ftp|sftp|file|ssh)://[^\s<>\"'`]+|\b(?:mailto|tel):[^\s<>\"'`]+")
_URL_WWW = _m(r"(?i)(?<![\w@./-])www\d?\.[a-z0-9-]+(?:\.[a-z0-9-]+)+(?::\d+)?(?:[/?#][^\s<>\"'`]*)?")
_URL_BARE = _m(r"(?i)(?<![\w@./-])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:" + _TLDS +
               r")(?::\d+)?(?:/[^\s<>\"'`]*)?(?![\w@-])")


def _trim_url(text: str, start: int, end: int) -> int:
    # Sentence punctuation and unbalanced closing brackets are not part of the URL.
    while end > start and text[end - 1] in ".,;:!?'\"":
        end -= 1
    for o, c in ("()", "[]", "{}"):
        while end > start and text[end - 1] == c and text[start:end].count(c) > text[start:end].count(o):
            end -= 1
            while end > start and text[end - 1] in ".,;:!?'\"":
                end -= 1
    return end


def find_urls(text: str) -> Iterator[Span]:
    for rx in (_URL_SCHEME, _URL_WWW, _URL_BARE):
        for m in rx.finditer(text):
            end = _trim_url(text, m.start(), m.end())
            if rx is _URL_BARE:
                host = m.group().split("/")[0]
                # "e.g", "i.e", file names such as report.pdf never reach here (TLD list); a bare
                # host needs a dot-separated label of at least 2 letters before the TLD.
                if len(host.split(".")[0]) < 2 or host[0].isdigit() and host.replace(".", "").isdigit():
                    continue
            if end - m.start() > 4:
                yield Span(m.start(), end, "URL", "url")


_IPV4 = _m(r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:/\d{1,2})?(?![\w]|\.\d)")
_IPV6 = _m(r"(?<![\w:.])(?=[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*:)[0-9A-Fa-f:.]{2,45}(?:%[0-9A-Za-z]+)?(?:/\d{1,3})?(?![\w:])")
_VERSION_BEFORE = _m(r"(?i)(?:\bv|\bversion|\bver\.?|\brelease|\bbuild|\brev\.?|\bno\.|§)\s*$")


def find_ips(text: str) -> Iterator[Span]:
    for m in _IPV4.finditer(text):
        if _VERSION_BEFORE.search(text[max(0, m.start() - 10):m.start()]):
            continue
        yield Span(m.start(), m.end(), "IP_ADDRESS", "ipv4")
    for m in _IPV6.finditer(text):
        raw = m.group()
        addr = raw.split("%")[0].split("/")[0].rstrip(".")
        if addr.count(":") < 2:
            continue
        try:
            ipaddress.IPv6Address(addr)
        except ValueError:
            continue
        yield Span(m.start(), m.start() + len(raw.rstrip(".")), "IP_ADDRESS", "ipv6")


_MAC = _m(r"(?<![\w:-])[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}(?![\w:-])|(?<![\w.])[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}(?![\w.])")


def find_macs(text: str) -> Iterator[Span]:
    for m in _MAC.finditer(text):
        yield Span(m.start(), m.end(), "DEVICE", "mac")


# --------------------------------------------------------------------------------------------
# Numbers with checksums: payment cards, IBAN, SSN
# --------------------------------------------------------------------------------------------

# Runs of digit groups separated by one space or dash; windows of the run are tried so a card
# next to another number is still found.
_DIGIT_RUN = _m(r"(?<![\w./-])\d+(?:[ -]\d+)*(?![\w]|\.\d)")


def _group_windows(run: str, base: int) -> Iterator[tuple[int, int, str]]:
    """Windows of consecutive digit groups holding 12 to 19 digits, longest first per start.
    Bounded by the digit count, so a long run of small groups stays linear."""
    groups = [(m.start(), m.end()) for m in re.finditer(r"\d+", run)]
    for i in range(len(groups)):
        n, j = 0, i
        while j < len(groups) and n + groups[j][1] - groups[j][0] <= 19:
            n += groups[j][1] - groups[j][0]
            j += 1
        for k in range(j - 1, i - 1, -1):
            s, e = groups[i][0], groups[k][1]
            digits = re.sub(r"\D", "", run[s:e])
            if len(digits) < 12:
                break
            yield base + s, base + e, digits


_NOT_CARD_LABEL = _m(r"(?i)\b(?:IMEI|MEID|serial|S/N)\b[^\n]{0,12}$")


def find_cards(text: str) -> Iterator[Span]:
    for m in _DIGIT_RUN.finditer(text):
        run = m.group()
        if sum(c.isdigit() for c in run) < 12:
            continue
        taken_until = -1
        for s, e, digits in _group_windows(run, m.start()):
            if s < taken_until:
                continue
            n = len(digits)
            if not (13 <= n <= 19 or (n == 12 and digits[0] in "56")):
                continue
            if digits[0] == "0" or not luhn_ok(digits):
                continue
            if _NOT_CARD_LABEL.search(text, max(0, s - 24), s):
                continue   # IMEIs are Luhn-checked too: their label says what they are
            seps = set(re.findall(r"[ -]", text[s:e]))
            if len(seps) > 1:
                continue
            yield Span(s, e, "CREDIT_CARD", "card")
            taken_until = e


_TOKEN = _m(r"[^\W_]+(?:[-./'][^\W_]+)*")
_LABEL_LIKE = _m(r"[ \t]*[:#=]")


def value_after(text: str, pos: int, min_digits: int = 4, max_tokens: int = 6) -> tuple[int, int] | None:
    """The value that follows a label at ``pos``: tokens joined by single spaces, each holding a
    digit or being a short all-capitals group ("ZZ 514547 T", "1569 CC", "H-3931"); a token that
    is itself followed by ':' is the next label and ends the value. None if too few digits."""
    spans: list[tuple[int, int]] = []
    p = pos
    while len(spans) < max_tokens:
        m = _TOKEN.match(text, p)
        if not m:
            break
        tok = m.group()
        short_caps = tok.isupper() and len(tok) <= 4 and tok.isalpha()
        if not (any(c.isdigit() for c in tok) or short_caps):
            break
        if spans and _LABEL_LIKE.match(text, m.end()):
            break
        spans.append(m.span())
        if text[m.end():m.end() + 1] == " " and m.end() + 1 < len(text) and text[m.end() + 1].isalnum():
            p = m.end() + 1
        else:
            break
    while spans and not any(c.isdigit() for c in text[spans[-1][0]:spans[-1][1]]) and len(spans) > 1 \
            and len(text[spans[-1][0]:spans[-1][1]]) > 2:
        spans.pop()
    if not spans:
        return None
    s, e = spans[0][0], spans[-1][1]
    if sum(c.isdigit() for c in text[s:e]) < min_digits:
        return None
    return s, e


_IBAN = _m(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[ -]?[A-Za-z0-9]){11,30}")


def find_ibans(text: str) -> Iterator[Span]:
    for m in _IBAN.finditer(text):
        cand = m.group()
        # The longest prefix (ending on a character) that validates: with the country's length
        # first, then mod 97 alone (generated or foreign data does not always keep the length).
        chars = [i for i, c in enumerate(cand) if c.isalnum()]
        found = None
        for strict in (True, False):
            found = next((k for k in range(len(chars), 14, -1)
                          if iban_ok(re.sub(r"[ -]", "", cand[:chars[k - 1] + 1]), strict)), None)
            if found:
                break
        if not found:
            continue
        after = m.start() + chars[found - 1] + 1
        if after < len(text) and text[after].isalnum() and found == len(chars):
            continue    # glued to more letters/digits: not a standalone IBAN
        yield Span(m.start(), after, "IBAN", "iban")


_SSN_DASHED = _m(r"(?<![\w-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\w]|-\d)")
_SSN_LABEL = (r"(?:SSN|SS#|S\.S\.N\.?|Social\s+Security(?:\s+(?:Number|No\.?|#|Num\.?))?|Soc\.?\s*Sec\.?"
              r"(?:\s*(?:No\.?|#|Number))?|ITIN|TIN|Tax\s*(?:payer)?\s*ID(?:\s*(?:No\.?|Number))?|EIN|"
              r"National\s+Insurance(?:\s+(?:Number|No\.?))?|NI\s+(?:Number|No\.?)|NINO|SIN|"
              r"Social\s+Insurance(?:\s+(?:Number|No\.?))?)")
_SSN_LABELLED = _m(r"(?i)\b" + _SSN_LABEL + r"(?:\s*\([^)\n\d]{1,30}\))?\s*(?:(?:is|was|of)(?=\s)|:|#|=|-|\.)?\s*[:#]?\s*(\d{3}[- .]?\d{2}[- .]?\d{4}|\d{3}[- ]?\d{3}[- ]?\d{3}|[A-Z]{2}\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]|\d{2}-\d{7})(?![\w])")


_SSN_LABEL_ONLY = _m(r"(?i)\b" + _SSN_LABEL + r"(?:\s*\([^)\n\d]{1,30}\))?[ \t]*(?:(?:is|was)(?=\s)|:|#|=|-|\.)?[ \t]*[:#]?[ \t]*(?:\n[ \t]*)?")


def ssn_ok(area: str, group: str, serial: str) -> bool:
    # Numbers the SSA never issues; anything else in this shape is treated as an SSN.
    return area != "000" and group != "00" and serial != "0000"


def find_ssns(text: str) -> Iterator[Span]:
    for m in _SSN_DASHED.finditer(text):
        a, sep, g, s = m.groups()
        if not ssn_ok(a, g, s):
            continue
        if sep == " " and (a == "666" or a[0] == "9"):
            continue
        yield Span(m.start(), m.end(), "SSN", "ssn")
    for m in _SSN_LABELLED.finditer(text):
        yield Span(m.start(1), m.end(1), "SSN", "ssn-label")
    # National identifiers of other shapes after an SSN-type label (NI numbers, codice fiscale,
    # personal identity codes): the label decides, the value is taken as written.
    for m in _SSN_LABEL_ONLY.finditer(text):
        v = value_after(text, m.end(), min_digits=4)
        if v:
            yield Span(v[0], v[1], "SSN", "ssn-label")


# --------------------------------------------------------------------------------------------
# Phone and fax numbers
# --------------------------------------------------------------------------------------------

_EXT = r"(?:\s*(?:ext\.?|extn\.?|extension|x|#)\s*\d{1,6})?"
_PHONE = _m(
    r"(?<![\w+@/.$€£-])"
    r"(?:\+|00)?\d{0,4}[ .-]?"                       # country code
    r"(?:\(\s*\+?\d{1,5}\s*\)[ .\-/]?|\(0\)[ .-]?)*"   # (area), (+358) or (0)
    r"\d{1,13}(?:[ .\-/]{1,2}\(?\d{1,8}\)?){0,6}"      # groups
    r"(?:\s*(?:ext\.?|extn\.?|extension|x)\s*\d{1,6})?"
    r"(?![\w@]|[.,]\d)", re.I)
_PHONE_LABEL = _m(
    r"(?i)(?:\b(?:tel(?:ephone)?|phone|ph|mobile|mob|cell(?:ular)?|fax|facsimile|pager|beeper|"
    r"landline|contact(?:\s+number)?|call(?:\s+me)?(?:\s+(?:at|on))?|direct(?:\s+line)?|"
    r"home|work|office|emergency\s+contact|dial|whatsapp|sms|number\s+is|reachable\s+(?:at|on)|"
    r"reach\s+(?:me|him|her|us|them)\s+(?:at|on)|call\s+(?:me|him|her|us|them)\s+(?:at|on)|"
    r"call\s+(?:at|on)|text\s+(?:me|us|him|her)(?:\s+(?:at|on))?|fax(?:ed)?\s+(?:\w+\s+){0,2}to|"
    r"(?:old|new|other)\s+one|(?:phone|telephone|fax|text|ring|call)(?:\s+\w+){0,2}\s+(?:to|at|on)|contact\s+(?:me|us|him|her)\s+(?:at|on))|\b[TFMHW])\.?"
    r"(?:\s*(?:no\.?|number|#|nr\.?))?\s*[:.]?\s*(?:\(?\s*(?:is|was)\s*\)?\s*)?$")
_CURRENCY_NEAR = _m(r"(?i)^\s*(?:%|percent|€|\$|£|eur\b|euros?\b|usd\b|dollars?\b|gbp\b|pounds?\b|chf\b|mg\b|ml\b|kg\b|km\b|units?\b|patients?\b|people\b|cases\b|years?\b|hours?\b|minutes?\b)")
_CURRENCY_BEFORE = _m(r"(?i)(?:[$€£¥]|\b(?:usd|eur|gbp|chf|rs\.?))\s*$")


def _phone_ok(cand: str, labelled: bool) -> bool:
    core = re.sub(r"(?i)\s*(?:ext\.?|extn\.?|extension|x|#)\s*\d{1,6}$", "", cand)
    digits = re.sub(r"\D", "", core)
    n = len(digits)
    if labelled:
        return 6 <= n <= 16
    if n < 7 or n > 15:
        return False
    groups = re.findall(r"\d+", core)
    seps = re.findall(r"[ .\-/]+", core.strip())
    if re.fullmatch(r"\d{4}\.\d{4}", core):
        return True    # 2481.7374: four decimals are not how amounts or measurements are written
    if _DATE_NUM.search(core) or _DATE_ISO.search(core):
        return False   # a date (and its time): the date recognizer owns it
    if core.startswith("+"):
        return n >= 8
    if "(" in core:
        return n >= 8
    if re.fullmatch(r"1?[ .-]?\d{3}[ .-]\d{3}[ .-]\d{4}", core):
        return True
    if core.startswith("00") and n >= 9:
        return True
    if "." in core and len(groups) < 3:
        return False   # decimals
    if "/" in core and len(groups) == 3 and len(groups[0]) <= 2 and len(groups[1]) <= 2:
        return False   # dates, fractions
    if len(groups) == 1:
        # A bare run of 8+ digits in prose is an identifier of some kind (Nordic phone numbers
        # are 8 digits); years, counts and amounts are shorter or carry separators.
        return n >= 8
    if re.fullmatch(r"\d{3}[ .-]\d{4}|\d{3}([ .-])\d{2}\1\d{2}", core):
        return True    # 555-0199, 702-93-13: local numbers
    if n >= 8 and len(groups) >= 3 and min(len(g) for g in groups) >= 2:
        return True    # 30 70 55 50, 442 44 797
    if len(groups) == 2 and n == 8 and len(groups[0]) == 4 and not all(
            re.fullmatch(r"(?:19|20)\d\d", g) for g in groups):
        return True    # 1234-5678 / 2481.7374: local numbers (AU, HK, SG); not a year range
    if digits[0] == "0" and n >= 9:
        return True
    if len(groups) >= 3 and n >= 9 and min(len(g) for g in groups[1:]) >= 2:
        return True
    if len(groups) == 2 and n >= 9 and min(len(g) for g in groups) >= 3:
        return True
    return False


def find_phones(text: str) -> Iterator[Span]:
    for m in _PHONE.finditer(text):
        s, e = m.start(), m.end()
        cand = m.group()
        # Trim trailing separators / unbalanced brackets the greedy pattern took.
        while e > s and text[e - 1] in " .-/(":
            e -= 1
        while s < e and text[s] in " .-/)":
            s += 1
        cand = text[s:e]
        if cand.count("(") != cand.count(")"):
            if cand.endswith(")") and cand.count(")") > cand.count("("):
                e -= 1
                cand = text[s:e]
            elif cand.startswith("(") and cand.count("(") > cand.count(")"):
                s += 1
                cand = text[s:e]
        if not cand or not any(c.isdigit() for c in cand):
            continue
        before = text[max(0, s - 40):s]
        labelled = bool(_PHONE_LABEL.search(before))
        # Alone on its line (a signature block, a letterhead): a number there is a contact.
        line_start = text.rfind("\n", 0, s) + 1
        line_end = text.find("\n", e)
        line_end = len(text) if line_end < 0 else line_end
        if not text[line_start:s].strip() and not text[e:line_end].strip():
            labelled = labelled or sum(c.isdigit() for c in cand) >= 7
        if not labelled and (_CURRENCY_BEFORE.search(before) or _CURRENCY_NEAR.match(text[e:e + 10])):
            continue
        if not labelled and _VERSION_BEFORE.search(before[-10:]):
            continue
        if _phone_ok(cand, labelled):
            yield Span(s, e, "PHONE", "phone-label" if labelled else "phone")


# --------------------------------------------------------------------------------------------
# Dates and ages
# --------------------------------------------------------------------------------------------

_MONTH = (r"(?:January|February|March|April|May|June|July|August|September|October|November|"
          r"December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\.?")
_WEEKDAY = r"(?:(?:Mon|Tues?|Wed(?:nes)?|Thu(?:rs)?|Fri|Sat(?:ur)?|Sun)(?:day)?\.?,?\s+)?"
_ORD = r"(?:st|nd|rd|th)?"
_YEAR = r"(?:\d{4}|'\d{2})"
_DATE_WORDS = [
    # Monday, March 14th, 1962 / Mar. 14 1962 / March 14
    _m(r"\b" + _WEEKDAY + _MONTH + r"\s+\d{1,2}" + _ORD + r"(?:,?\s+" + _YEAR + r")?(?!\d|[.,]\d)", re.I),
    # 14 March 1962 / 14th of March, 1962 / 14 Mar
    _m(r"\b" + _WEEKDAY + r"\d{1,2}" + _ORD + r"\s+(?:of\s+)?" + _MONTH + r"(?:,?\s+" + _YEAR + r")?(?![\w])", re.I),
    # 14-Mar-1962 / 14-MAR-62 / 14/Mar/1962
    _m(r"\b\d{1,2}([-/ ])" + _MONTH + r"\1(?:\d{4}|\d{2})\b", re.I),
    # 1st day of June, 2024
    _m(r"\b\d{1,2}" + _ORD + r"\s+day\s+of\s+" + _MONTH + r"(?:,?\s+(?:in\s+the\s+year\s+)?" + _YEAR + r")?(?![\w])", re.I),
    # Mar-14-1962 / MAR/14/62
    _m(r"\b" + _MONTH + r"([-/])\d{1,2}\1(?:\d{4}|\d{2})\b", re.I),
    # March 1962 / Mar 1962
    _m(r"\b" + _MONTH + r",?\s+\d{4}\b", re.I),
]
_MONTH_RX = _m(r"\b" + _MONTH, re.I)
_DATE_NUM = _m(r"(?<![\w./-])(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})(?![\w]|[./-]\d)")
_DATE_ISO = _m(r"(?<![\w./-])(\d{4})([/.-])(\d{1,2})\2(\d{1,2})(?!(?!T\d)\w|[./-]\d)")
_DOB_LABEL = _m(r"(?i)\b(?:DOB|D\.O\.B\.?|date\s+of\s+birth|birth\s*date|birthday|born(?:\s+on)?|"
                r"date\s+of\s+death|DOD|date\s+of\s+(?:admission|discharge|service|visit|surgery)|"
                r"(?:admission|discharge|admit|visit|service|procedure)\s+date)\s*[:#=-]?\s*"
                r"(\d{1,4}[/.-]\d{1,2}(?:[/.-]\d{1,4})?|\d{8})(?!\d)")
_AGE = _m(r"(?i)\b(?:(?:9\d|1[0-4]\d)(?:[- ](?:year|yr)s?[- ]old|\s*y/?o\b|\s*yrs?\b)|"
          r"(?:age[ds]?|aged)\s*[:]?\s*(?:9\d|1[0-4]\d))\b")


def _ymd_ok(d1: int, d2: int) -> bool:
    return (1 <= d1 <= 12 and 1 <= d2 <= 31) or (1 <= d1 <= 31 and 1 <= d2 <= 12)


def find_dates(text: str) -> Iterator[Span]:
    for rx in _DATE_WORDS:
        for m in rx.finditer(text):
            word = _MONTH_RX.search(m.group())
            if word and not word.group()[0].isupper():
                continue    # "may 12": a lowercase month name is a verb more often than a date
            yield Span(m.start(), m.end(), "DATE", "date")
    for m in _DATE_NUM.finditer(text):
        a, _, b, y = m.groups()
        if not _ymd_ok(int(a), int(b)):
            continue
        if len(y) == 4 and not 1800 <= int(y) <= 2599:   # 25xx: Buddhist-era years
            continue
        if _VERSION_BEFORE.search(text[max(0, m.start() - 10):m.start()]):
            continue
        yield Span(m.start(), m.end(), "DATE", "date")
    for m in _DATE_ISO.finditer(text):
        y, _, a, b = m.groups()
        if 1800 <= int(y) <= 2599 and 1 <= int(a) <= 12 and 1 <= int(b) <= 31:
            yield Span(m.start(), m.end(), "DATE", "date")
    for m in _DOB_LABEL.finditer(text):
        yield Span(m.start(1), m.end(1), "DATE", "date-label")


def find_ages(text: str) -> Iterator[Span]:
    # Safe Harbor: ages over 89 are identifying.
    for m in _AGE.finditer(text):
        s = m.start()
        if m.group()[:1] in "aA":      # "Age: 93": the label stays, the number goes
            s = m.end() - len(re.search(r"\d+$", m.group()).group())
        yield Span(s, m.end(), "AGE", "age")


# --------------------------------------------------------------------------------------------
# Geography: ZIP / postcodes, street addresses, city in "City, ST 12345"
# --------------------------------------------------------------------------------------------

_STATES = ("AL|AK|AZ|AR|CA|CO|CT|DE|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|"
           "NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|DC|PR|VI|GU|AS|MP|"
           "AA|AE|AP|FM|MH|PW")
_STATE_NAMES = ("Alabama|Alaska|Arizona|Arkansas|California|Colorado|Connecticut|Delaware|Florida|"
                "Georgia|Hawaii|Idaho|Illinois|Indiana|Iowa|Kansas|Kentucky|Louisiana|Maine|"
                "Maryland|Massachusetts|Michigan|Minnesota|Mississippi|Missouri|Montana|Nebraska|"
                "Nevada|New Hampshire|New Jersey|New Mexico|New York|North Carolina|North Dakota|"
                "Ohio|Oklahoma|Oregon|Pennsylvania|Rhode Island|South Carolina|South Dakota|"
                "Tennessee|Texas|Utah|Vermont|Virginia|Washington|West Virginia|Wisconsin|Wyoming|"
                "District of Columbia|Puerto Rico")
_CAP_WORD = r"[A-Z][A-Za-z'.\-]*"
_ZIP_STATE = _m(r"\b(?:" + _STATES + "|" + _STATE_NAMES + r")\.?,?\s+(\d{5}(?:-\d{4})?)(?![\w-])")
_CITY_STATE = _m(r"(?<![\w])((?:" + _CAP_WORD + r"[ \t]){0,3}" + _CAP_WORD + r"),[ \t]*(?:"
                 + _STATES + "|" + _STATE_NAMES + r")\.?,?[ \t]+\d{5}(?:-\d{4})?(?![\w-])")
_ZIP_LABEL = _m(r"(?i)\b(?:zip(?:\s*code)?|postal\s*code|post\s*code|postcode|PLZ|CEP|PIN\s*code)[ \t]*[:#]?[ \t]*([A-Z0-9]{2,5}(?:[ -][A-Z0-9]{2,4})?)\b")
_ZIP_LABEL_ONLY = _m(r"(?i)\b(?:zip(?:\s*code)?|postal\s*code|post\s*code|postcode|PLZ|CEP|PIN\s*code)[ \t]*[:#]?[ \t]*")
_UK_POSTCODE = _m(r"\b(?:[A-Z]{1,2}\d[A-Z\d]?|GIR) ?\d[ABD-HJLNP-UW-Z]{2}\b")
_CA_POSTCODE = _m(r"\b[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z] ?\d[ABCEGHJ-NPRSTV-Z]\d\b")
# "16756 Hannoversch Münden" / "75008 Paris" at the start of a line (continental layout).
_ZIP_CITY_LINE = _m(r"(?m)^[ \t]*(\d{4,5})[ \t]+([A-ZÄÖÜÉ][\wäöüßéèà'\-]+(?:[ \t][A-ZÄÖÜÉ][\wäöüßéèà'\-]+){0,2})[ \t]*$")

_SUFFIXES = (
    "Street|St|Avenue|Ave|Av|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|Square|Sq|"
    "Terrace|Ter|Terr|Way|Parkway|Pkwy|Highway|Hwy|Circle|Cir|Trail|Trl|Path|Pike|Alley|Aly|Plaza|"
    "Plz|Crescent|Cres|Close|Grove|Gardens|Gdns|Garden|Mews|Row|Walk|Hill|Hills|Heights|Hts|Park|"
    "Loop|Run|Pass|Passage|Crossing|Xing|Point|Pt|Points|Ridge|Ridges|View|Views|Trace|Lodge|"
    "Springs|Spring|Station|Sta|Village|Vlg|Villages|Ville|Vista|Valley|Valleys|Vly|Expressway|"
    "Expy|Freeway|Fwy|Turnpike|Tpke|Route|Rte|Causeway|Cswy|Bypass|Byp|Bridge|Brg|Branch|Br|Brook|"
    "Brooks|Burg|Burgs|Camp|Canyon|Cape|Center|Centre|Ctr|Centers|Circles|Cliff|Cliffs|Club|"
    "Common|Commons|Corner|Corners|Course|Courts|Cove|Coves|Creek|Crest|Crossroad|Curve|Dale|Dam|"
    "Divide|Drives|Estate|Estates|Extension|Extensions|Ext|Fall|Falls|Ferry|Field|Fields|Flat|"
    "Flats|Ford|Fords|Forest|Forge|Forges|Fork|Forks|Fort|Ft|Gateway|Glen|Glens|Green|Greens|"
    "Groves|Harbor|Harbour|Harbors|Haven|Hollow|Inlet|Island|Islands|Isle|Junction|Jct|Junctions|"
    "Key|Keys|Knoll|Knolls|Lake|Lakes|Land|Landing|Light|Lights|Loaf|Lock|Locks|Mall|Manor|"
    "Manors|Meadow|Meadows|Mill|Mills|Mission|Motorway|Mount|Mountain|Mountains|Neck|Orchard|"
    "Oval|Overpass|Parks|Parkways|Pine|Pines|Plain|Plains|Port|Ports|Prairie|Radial|Ramp|Ranch|"
    "Rapid|Rapids|Rest|River|Roads|Rue|Shoal|Shoals|Shore|Shores|Skyway|Spur|Spurs|Squares|"
    "Stravenue|Stream|Streets|Summit|Throughway|Track|Trafficway|Tunnel|Underpass|Union|Unions|"
    "Via|Viaduct|Walks|Wall|Ways|Well|Wells|Quay|Wharf|Embankment|Broadway|Parade|Esplanade|"
    "Promenade|Chase|Rise|Yard|Wynd|Gate|End|Hall|Side")
_SECONDARY = (r"(?:,?[ \t]+(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|Flat|Fl\.?|Floor|Room|Rm\.?|Bldg\.?|"
              r"Building|Dept\.?|#)[ \t]*#?[ \t]*[A-Za-z0-9][A-Za-z0-9\-]*)?")
_STREET = _m(r"(?<![\w/.-])\d{1,6}[A-Za-z]?(?:-\d{1,5}[A-Za-z]?)?,?[ \t]+"
             r"(?:(?:[NSEW]|NE|NW|SE|SW|North|South|East|West)\.?[ \t]+)?"
             r"(?:(?:\d{1,3}(?:st|nd|rd|th)|" + _CAP_WORD + r")[ \t]+){0,4}"
             r"(?:" + _SUFFIXES + r")\.?(?![\w])"
             r"(?:[ \t]+(?:[NSEW]|NE|NW|SE|SW)\.?(?![\w]))?" + _SECONDARY)
_PO_BOX = _m(r"(?i)\b(?:P\.?\s?O\.?\s*Box|Post\s+Office\s+Box|Postfach|PMB)\s*#?\s*\d+\b")
_STREET_EU = _m(r"(?<![\w-])[A-ZÄÖÜ][\wäöüß\-]*(?:stra(?:ß|ss)e|str\.|gasse|weg|allee|platz|ring|"
                r"damm|ufer|steig|pfad|chaussee)(?:[ \t]+\d{1,5}[a-z]?(?:[-/]\d{1,5}[a-z]?)?)", re.I)
_STREET_FR = _m(r"(?<![\w])\d{1,4}(?:[ \t]?(?:bis|ter))?,?[ \t]+(?:rue|avenue|av\.|boulevard|bd|"
                r"place|allée|allee|chemin|impasse|quai|route|cours|passage|square|via|viale|"
                r"piazza|calle|carrer|plaza|avenida)[ \t]+(?:(?:de|du|des|la|le|l'|d')[ \t]*)*"
                r"(?:[A-ZÉ][\w'\-éèêàç]*[ \t]?){1,4}", re.I)


_CITY_AFTER = _m(r"(?:,[ \t]*|[ \t]+in[ \t]+)((?:" + _CAP_WORD + r"[ \t]){0,2}" + _CAP_WORD + r")(?![\w])")
_NOT_PLACES = frozenset("Apt Apartment Suite Ste Unit Flat Floor Room Building Dept The On At For "
                        "Phone Tel Fax Email Mobile Cell".split()) | frozenset(_STATES.split("|"))
_PLATE = _m(r"(?i:\b(?:licen[cs]e\s+plate|number\s+plate|plate|registration(?:\s+(?:plate|mark))?|"
            r"reg\.?\s*(?:no\.?|mark|plate)|reg\.|reg(?=\s*:)|tag)(?:\s*(?:no\.?|number|#))?\s*[:#]?\s*)"
            r"([A-Z0-9]{1,8}(?:[ \-\u2022\u00b7][A-Z0-9]{1,8}){0,2})(?![\w-])")


_NEXT_LINE_TOWN = _m(r"[ \t,]*\n[ \t]*((?:" + _CAP_WORD + r"[ \t]){0,3}" + _CAP_WORD + r"),?[ \t]+(?:(?:"
                     + _STATES + "|" + _STATE_NAMES + r")\.?,?[ \t]+)?(\d{5}(?:-\d{4})?|\d{4})[ \t]*(?=\n|$)")


def find_geography(text: str) -> Iterator[Span]:
    for m in _ZIP_STATE.finditer(text):
        yield Span(m.start(1), m.end(1), "ZIP", "zip")
    for m in _CITY_STATE.finditer(text):
        city = m.group(1)
        # Drop a leading street-suffix word that belongs to the line before on one-line addresses.
        yield Span(m.start(1), m.start(1) + len(city), "LOCATION", "city-state")
    for m in _ZIP_LABEL.finditer(text):
        if any(c.isdigit() for c in m.group(1)):
            yield Span(m.start(1), m.end(1), "ZIP", "zip-label")
    for m in _ZIP_LABEL_ONLY.finditer(text):
        v = value_after(text, m.end(), min_digits=2, max_tokens=3)
        if v:
            yield Span(v[0], v[1], "ZIP", "zip-label")
    for rx in (_UK_POSTCODE, _CA_POSTCODE):
        for m in rx.finditer(text):
            yield Span(m.start(), m.end(), "ZIP", "postcode")
    for m in _ZIP_CITY_LINE.finditer(text):
        if _STREET.match(text, m.start(1)):
            continue    # "5150 Spencer Mill": a street line, not "75008 Paris"
        yield Span(m.start(1), m.end(1), "ZIP", "zip-city")
        yield Span(m.start(2), m.end(2), "LOCATION", "zip-city")
    for rx in (_STREET, _PO_BOX, _STREET_EU, _STREET_FR):
        for m in rx.finditer(text):
            end = m.end()
            while end > m.start() and text[end - 1] in " \t,":
                end -= 1
            yield Span(m.start(), end, "ADDRESS", "street")
            # The line after a street line: "Springfield 62704", "Springfield, IL 62704-1234".
            nl = _NEXT_LINE_TOWN.match(text, end)
            if nl:
                yield Span(nl.start(1), nl.end(1), "LOCATION", "town-after-street")
                yield Span(nl.start(2), nl.end(2), "ZIP", "zip-after-street")
            # "... 12 Oak Street in Springfield" / "12 Oak Street, Springfield": the town.
            c = _CITY_AFTER.match(text, end)
            if c and c.group(1).split()[0] not in _NOT_PLACES:
                yield Span(c.start(1), c.end(1), "LOCATION", "city-after-street")
    for m in _PLATE.finditer(text):
        n = sum(ch.isalnum() for ch in m.group(1))
        if any(ch.isdigit() for ch in m.group(1)) and 3 <= n <= 10:
            yield Span(m.start(1), m.end(1), "VEHICLE", "plate")


# --------------------------------------------------------------------------------------------
# Labelled identifiers: the label says what it is, the value has a loose shape
# --------------------------------------------------------------------------------------------

_NO = r"(?:[\s_]*(?:No\.?|Nr\.?|Num\.?|Numbers?|#|ID|Identifiers?|Code))?"
_LABELS = [
    ("MRN", r"(?-i:MRN|mrn)|MR#|Med(?:ical)?\.?\s*Rec(?:ord)?s?\.?" + _NO + r"|Medical\s+Record" + _NO +
            r"|Patient\s*(?:ID|No\.?|Number|#|Identifier)|Chart" + _NO + r"|Hospital\s*(?:No\.?|Number|#|ID)"
            r"|Unit\s+(?:No\.?|Number)|Record\s*(?:No\.?|Number|#)|Case\s*(?:No\.?|Number|#|ID)|"
            r"Encounter\s*(?:No\.?|Number|#|ID)|Admission\s*(?:No\.?|Number|#|ID)|Accession" + _NO +
            r"|Specimen\s*(?:No\.?|Number|#|ID)|Visit\s*(?:No\.?|Number|#|ID)|(?-i:NHS|nhs)" + _NO),
    ("HEALTH_PLAN", r"Member" + _NO + r"|Subscriber" + _NO + r"|(?:Health\s*)?Plan\s*(?:ID|No\.?|Number|#)|"
                    r"Health\s+Plan(?:\s+Beneficiary)?" + _NO + r"|Beneficiary" + _NO +
                    r"|Medicaid" + _NO + r"|Medicare" + _NO + r"|(?-i:MBI|mbi)|(?-i:HICN|hicn)|"
                    r"Insurance" + _NO + r"|Insured\s*ID|Policy" + _NO + r"|Group" + r"\s*(?:No\.?|Number|#|ID)"
                    r"|Claim\s*(?:No\.?|Number|#|ID)|Coverage\s*ID|Enrollee\s*ID|Payer\s*ID"),
    ("ACCOUNT", r"Account" + _NO + r"|Acct\.?" + _NO + r"|A/C" + _NO + r"|Bank\s+Account" + _NO +
                r"|Card\s*(?:No\.?|Number|#)|Sort\s*Code|Routing" + _NO + r"|(?-i:ABA)" + _NO +
                r"|Customer" + _NO + r"|Client" + _NO + r"|Loan" + _NO + r"|Mortgage" + _NO +
                r"|Reference\s*(?:No\.?|Number|#)|Ref\.?\s*(?:No\.?|#)?|Billing\s*(?:ID|No\.?|Number|#)|"
                r"Invoice\s*(?:No\.?|Number|#)|Contract\s*(?:No\.?|Number|#|ID)|(?-i:BIC)|SWIFT" + _NO +
                r"|Transit\s*(?:No\.?|Number)|Checking" + _NO + r"|Savings" + _NO + r"|Portfolio" + _NO),
    ("LICENSE", r"D/L" + _NO + r"|Driver'?s?\s+Licen[cs]e" + _NO + r"|Driving\s+Licen[cs]e" + _NO + r"|(?-i:DL)" + _NO +
                r"|Licen[cs]e" + _NO + r"|Lic\.?" + _NO + r"|(?-i:DEA)" + _NO + r"|(?-i:NPI|npi)" + _NO +
                r"|Certificate" + _NO + r"|Cert\.?" + _NO + r"|Registration\s*(?:No\.?|Number|#)|"
                r"Permit" + _NO + r"|Registration(?=\s*:)|Badge" + _NO + r"|Bar\s*(?:No\.?|Number|#)|State\s+ID" + _NO),
    ("PASSPORT", r"Passport" + _NO + r"|Travel\s+Document" + _NO),
    ("VEHICLE", r"(?-i:VIN|vin)|Vehicle\s*(?:ID(?:entification)?|Identification)?" + _NO +
                r"|Licen[cs]e\s+Plate" + _NO + r"|Plate" + _NO + r"|Reg(?:istration)?\.?\s*(?:Plate|Mark)" + _NO),
    ("DEVICE", r"S/N|(?-i:SN)|Serial" + _NO + r"|Device" + _NO + r"|Device\s+Serial" + _NO + r"|(?-i:IMEI|imei)|(?-i:MEID|meid)|(?-i:UDI|udi)|"
               r"Implant" + _NO + r"|Lot" + _NO + r"|Model/Serial|Asset\s*Tag|Equipment" + _NO),
    ("ID", r"(?-i:ID)|I\.D\.|Identifier|(?-i:ID)\s*(?:No\.?|Number|#)|Employee" + _NO + r"|Staff" + _NO +
           r"|Student" + _NO + r"|National\s+ID" + _NO + r"|Personal\s+ID" + _NO + r"|User\s*(?:name|ID)|"
           r"Username|Login|Tax\s+(?:No\.?|Number)|Prescription" + _NO + r"|Rx" + _NO + r"|Identity" + _NO + r"|Citizen" + _NO + r"|Voter" + _NO),
]
# Value: one token with at least one digit (or a labelled all-letter code of 6+), with internal
# - / . ; more all-digit groups joined by one space follow (e.g. "1234 5678 9012").
_VALUE = (r"((?=[A-Za-z0-9\-/.]*\d)[A-Za-z0-9](?:[A-Za-z0-9]|[-/.](?=[A-Za-z0-9]))*"
          r"(?:[ ](?=\d)\d{2,}(?:[-/.]\d+)*){0,5}"
          r"|[A-Z]{2,4}[ -]\d[\dA-Z\-]{2,})")
_LABEL_RES = [
    (typ, _m(r"(?i)(?<![\w])(?:" + lab + r")(?![\w])\.?\s*(?:\([^)\n\d]{1,30}\)\s*)?\(?"
             r"(?:(?:(?:is|was|of)(?=\s)|:|#|=|–|-|no\.?)\s*){0,2}[:#]?[ \t]*\n?[ \t]*" + _VALUE))
    for typ, lab in _LABELS
]


def find_labelled(text: str) -> Iterator[Span]:
    for typ, rx in _LABEL_RES:
        for m in rx.finditer(text):
            s, e = m.start(1), m.end(1)
            longer = value_after(text, s, min_digits=1)
            if longer and longer[1] > e:
                e = longer[1]     # "PZK 203948 H": a trailing group the value shape stopped at
            val = text[s:e]
            alnum = re.sub(r"[^A-Za-z0-9]", "", val)
            if len(alnum) < 4:
                continue
            # A four-digit year after "ID" or "Plate" etc. in prose ("Lot 2019") is kept only
            # when the value is more than a bare 4-digit number.
            if typ == "ID" and re.fullmatch(r"\d{4}", alnum):
                continue
            label = m.group(0)[: s - m.start()]
            if typ == "ID" and not re.search(r"(?i)\bID\b|I\.D\.|identifier|no\.|number|#|:", label):
                continue
            yield Span(s, e, typ, "label:" + typ.lower())


# Safe Harbor's catch-all, "any other unique identifying number": any label that says it is a
# number or an identifier ("Loyalty card number:", "Locker ID:") followed by a value with digits.
_GENERIC_LABEL = _m(r"(?i)(?<![\w/'\-])((?:[A-Za-z/'\-]+[ \t]+){0,3})(?:number|no\.|num\.?|nr\.?|#|id|identifier|"
                    r"ident)s?[ \t]*[:#][ \t]*")
_GENERIC_NOT = frozenset("page version ver rev revision icd cpt hcpcs ndc diagnosis procedure room bed "
                         "floor table figure fig section clause item line step question chapter order "
                         "quantity qty dose batch test model part catalog catalogue product sku "
                         "ticket".split())


# "card ending in 4242": the last digits of a card or account are kept out too.
_ENDING_IN = _m(r"(?i)\b(?:card|account|acct|a/c)(?:\s+(?:number|no\.?|#))?\s+ending(?:\s+(?:in|with))?"
                r"\s*[:#]?\s*(\d{3,6})\b")


# "Rx#: 1234567", "Grp#: 12345", "Enc# 4455667": an abbreviation glued to '#'.
_HASH_LABEL = _m(r"(?<![\w#])([A-Za-z]{2,12})#[ \t]*:?[ \t]*")


def find_generic_ids(text: str) -> Iterator[Span]:
    for m in _HASH_LABEL.finditer(text):
        if m.group(1).lower() in _GENERIC_NOT:
            continue
        v = value_after(text, m.end(), min_digits=3, max_tokens=4)
        if v:
            yield Span(v[0], v[1], "ID", "label:id")
    for m in _ENDING_IN.finditer(text):
        yield Span(m.start(1), m.end(1), "ACCOUNT", "label:account")
    for m in _GENERIC_LABEL.finditer(text):
        words = {w.lower().strip("/'-") for w in m.group(1).split()}
        if words & _GENERIC_NOT:
            continue
        v = value_after(text, m.end(), min_digits=3, max_tokens=4)
        if v:
            yield Span(v[0], v[1], "ID", "label:id")


_VIN = _m(r"(?<![A-Za-z0-9])[A-HJ-NPR-Z0-9]{17}(?![A-Za-z0-9])")
_IMEI = _m(r"(?<![\w-])\d{2}[ -]?\d{6}[ -]?\d{6}[ -]?\d(?![\w-])")


def find_vins(text: str) -> Iterator[Span]:
    for m in _VIN.finditer(text):
        v = m.group()
        if vin_ok(v) and re.search(r"[A-Z]", v) and re.search(r"\d", v):
            yield Span(m.start(), m.end(), "VEHICLE", "vin")


# --------------------------------------------------------------------------------------------
# Name and organisation heuristics (deterministic; the model layer adds what these miss)
# --------------------------------------------------------------------------------------------

# Letters beyond ASCII (Lucía, Fernández, Łukasz, Ødegaard); Latin Extended-A mixes cases.
_UP = "A-Z\u00c0-\u00d6\u00d8-\u00de\u0100-\u017f"
_LO = "a-z\u00df-\u00f6\u00f8-\u00ff\u0100-\u017f"
_NAME_WORD = (f"(?:[{_UP}]')?[{_UP}][{_LO}]+(?:[{_UP}][{_LO}]+)?(?:[-'][{_UP}]?[{_LO}]+)*"
              r"(?![\w])")
_INITIAL = r"[A-Z]\."
_FULL_NAME = r"(?:" + _NAME_WORD + r"|" + _INITIAL + r")(?:[ \t]+(?:" + _NAME_WORD + r"|" + _INITIAL + r")){0,3}"
_TITLE = _m(r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Professor|Doctor|Sir|Dame|Rev|Hon|Judge|Nurse|Mme|Mlle|Herr|Frau)"
            r"\.?[ \t]+(" + _FULL_NAME + r")(?:,?[ \t]+(?:Jr|Sr|II|III|IV|MD|PhD|RN|DDS|DO|NP|PA-C|Esq)\.?)*")
_NAME_LABEL_WORDS = (r"(?i:\b(?:patient(?:'s)?(?:\s+name)?|pt\.?(?:\s+name)?|name|full\s+name|client(?:\s+name)?|customer(?:\s+name)?|"
                 r"account\s+holder|holder|employee(?:\s+name)?|guarantor|insured|subscriber(?:\s+name)?|"
                 r"member(?:\s+name)?|policyholder|beneficiary(?:\s+name)?|next\s+of\s+kin|"
                 r"emergency\s+contact|contact(?:\s+person)?|attn|attention|physician|provider|"
                 r"surgeon|attending|referring(?:\s+physician)?|signed|signature|witness|"
                 r"prepared\s+by|reviewed\s+by|approved\s+by|author|from|to|cc|bcc|"
                 r"borrower|co-borrower|lender|landlord|tenant|buyer|seller|party|"
                 r"spouse|mother|father|guardian|parent|son|daughter|wife|husband|witness|"
                 r"clinician|nurse|doctor|therapist|dentist|pharmacist|claimant|applicant|"
                 r"patient\s+full\s+name|first\s+name|last\s+name|surname|given\s+names?)"
                 r"(?:\s*:[ \t]*|[ \t]{3,}))"
                     )
_NAME_LABEL = _m(_NAME_LABEL_WORDS + r"(" + _FULL_NAME + r")")
_NAME_CAPS = (r"(?:[A-Z][A-Z'\-]+(?:,?[ \t]+(?:[A-Z][A-Z'\-]+|[A-Z]\.)){1,3}|" + _NAME_WORD + r",[ \t]+"
              + _NAME_WORD + r"(?:[ \t]+(?:" + _NAME_WORD + r"|[A-Z]\.))?)(?![\w])")
# "Patient: DOE, JANE" / "Name: Smith, John": capitals or surname-first after the same labels.
_NAME_LABEL_ALT = _m(_NAME_LABEL_WORDS + "(" + _NAME_CAPS + ")")
_DEAR = _m(r"\b(?:Dear|Hi|Hello|Sincerely|Regards|Thanks|Cheers|Best)[ ,\t]*(?:\n[ \t]*)?(?:(?:Mr|Mrs|Ms|Dr|Prof|Miss)\.?[ \t]+)?(" + _FULL_NAME + r")")
_PARTY = _m(r"(?i:\bby\s+and\s+between\s+)(" + _FULL_NAME + r")")
_NAME_BEFORE_EMAIL = _m(r"(?m)(" + _FULL_NAME + r")[ \t]*<[^>\s]+@[^>\s]+>")
_SIGNOFF = _m(r"(?:Sincerely|Regards|Best regards|Kind regards|Yours truly|Yours sincerely|Best|Thanks|Cheers|Respectfully)"
              r",?[ \t]*\n(?:[ \t]*\n)?[ \t]*(" + _FULL_NAME + r")")
# Words may hold hyphens but not start or end with one, and words are joined by spaces only:
# with no two ways to split a run, the match stays linear (no catastrophic backtracking).
_ORG_WORD = r"[A-Z][\w'&.]*(?:-[\w'&.]+)*"
_ORG = _m(r"(?<![\w])((?:" + _ORG_WORD + r"(?:,?[ \t]+(?:and|&)[ \t]+|,[ \t]+|[ \t]+)){0,4}" + _ORG_WORD +
          r"[ \t]+(?:Inc|LLC|L\.L\.C|Ltd|Limited|PLC|plc|Corp|Corporation|Company|Co|GmbH|AG|SA|S\.A|"
          r"SAS|SARL|BV|NV|LLP|LP|PC|Group|Holdings|Bank|Hospital|Clinic|Medical\s+Center|"
          r"Health(?:\s+System)?|University|College|Associates|Partners|Foundation|Trust|"
          r"Medical\s+Centre|Health\s+Centre|Centre|Surgery|Practice|Medical\s+Group|Hospice|"
          r"Insurance|Pharmacy|Laboratories|Labs|and\s+Sons|&\s+Sons|Sons)\.?)(?![\w])"
          r"|(?<![\w-])([A-Z][a-z]+,[ \t]+[A-Z][a-z]+,?[ \t]+(?:and|&)[ \t]+[A-Z][a-z]+)(?![\w])"
          r"|(?<![\w-])([A-Z][a-z]{1,}-[A-Z][a-z]{2,})(?![\w-])")
_HYPHEN_NOT_ORG = frozenset("Non Pre Post Anti Mid Co Self Follow Check Long Short Well Re Ex In Out "
                            "Up Over Under Multi Semi Sub Inter Intra Trans Cross Full Half Part "
                            "High Low Left Right North South East West Year Day".split())
# Words the name heuristics must never take as a name (capitalised words at line starts etc.).
# Words after a given name that make it something else ("Virginia Beach", "Jordan River").
_NOT_SURNAMES = frozenset("""Street Avenue Road Lane Drive Beach River Lake Mount County City
Hospital Clinic University College School Bank Group Inc Ltd LLC Center Centre Park Valley
Medical Health Foundation Trust Insurance Airport Station Island Bay""".split())
_NOT_NAMES = frozenset("""The This That These Those Patient Name Date Phone Fax Email Address Re
Subject To From Dear Hi Hello Sincerely Regards Thanks Best Cc Bcc Account Number Member ID Policy
Department Hospital Clinic Bank Plan Doctor Dr Mr Mrs Ms Miss Nurse Street Avenue Road Suite Apt
Unit Room Floor Date Of Birth Age Sex Male Female Unknown Note Notes History Diagnosis Assessment
Plan Signed Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April
May June July August September October November December Team Customer Client Services Service
Support Office Manager Director Department Page Inc LLC Ltd Group In On At For With And Or But
Attn Attention Yes No None Please Kind Yours Truly Confidential Summary Report Medical Record MRN
SSN Card IBAN The DOB DOD Dob Tel Sex Gender Age Phone Email Fax ID""".split())


_TITLE_BEFORE = _m(r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Professor|Doctor|Sir|Dame|Rev|Hon|Mme|Mlle|Herr|Frau)\.?[ \t]+$")
_SUFFIX_AFTER = _m(r",?[ \t]+(?:Jr|Sr|II|III|IV|V|MD|M\.D|DDS|PhD|Ph\.D|DVM|RN|NP|DO|Esq|PA-C)\.?(?![\w])")


def _name_span(text: str, s: int, e: int) -> Iterator[Span]:
    # Words of the candidate; capitalised non-names at either end are dropped ("Name Date").
    words = list(re.finditer(r"\S+", text[s:e]))

    def not_name(w: str) -> bool:
        w = w.rstrip(".,:")
        return w in _NOT_NAMES or w.capitalize() in _NOT_NAMES or w.upper() in _NOT_NAMES

    while words and not_name(words[-1].group()):
        words.pop()
    while words and not_name(words[0].group()):
        words.pop(0)
    if not words or all(len(w.group()) == 2 and w.group().endswith(".") for w in words):
        return
    s, e = s + words[0].start(), s + words[-1].end()
    # A title before and degrees/generational suffixes after belong to the name as written.
    t = _TITLE_BEFORE.search(text, max(0, s - 12), s)
    if t:
        s = t.start()
    while True:
        m = _SUFFIX_AFTER.match(text, e)
        if not m:
            break
        e = m.end()
    yield Span(s, e, "PERSON", "name-heuristic")


# Common given names (US, UK and European usage). A capitalised word after one of these is
# taken as a surname: "Renee Gomez", "Send it to Brian Davis". Unlabelled names beyond this list
# are the model layer's job.
FIRST_NAMES = frozenset("""
Aaron Abigail Adam Adrian Aiden Alan Albert Alex Alexander Alexandra Alexis Alice Alicia Allison
Alyssa Amanda Amber Amy Andrea Andrew Angela Anita Ann Anna Anne Annette Anthony Antonio April
Arthur Ashley Audrey Austin Barbara Barry Benjamin Bernard Beth Betty Beverly Bill Billy Bob
Bobby Bonnie Brad Bradley Brandon Brandy Brenda Brent Brett Brian Brianna Bridget Brittany Brooke
Bruce Bryan Caleb Calvin Cameron Carl Carla Carlos Carmen Carol Caroline Carolyn Carrie Casey
Catherine Cathy Chad Charles Charlene Charlotte Chelsea Cheryl Chloe Chris Christian Christina
Christine Christopher Christy Cindy Claire Clarence Claudia Clayton Clifford Cody Colin Colleen
Connie Connor Courtney Craig Crystal Curtis Cynthia Daisy Dale Dan Dana Daniel Danielle Danny
Darlene Darren Darryl David Dawn Dean Debbie Deborah Debra Denise Dennis Derek Derrick Desiree
Destiny Diana Diane Dillon Dominic Donald Donna Doris Dorothy Douglas Dustin Dwayne Dylan Earl
Eddie Edgar Edward Eileen Elaine Eleanor Elijah Elizabeth Ellen Emily Emma Eric Erica Erik Erin
Ernest Ethan Eugene Eva Evan Evelyn Felicia Fernando Frances Francis Frank Franklin Fred
Frederick Gabriel Gabriella Gail Gary Gavin Gene Geoffrey George Georgia Gerald Gina Glen Glenn
Gloria Gordon Grace Graham Grant Greg Gregory Hailey Haley Hannah Harold Harry Hayden Heather
Hector Heidi Helen Henry Holly Howard Hunter Ian Isaac Isabel Isabella Jack Jackie Jackson Jacob
Jacqueline Jaime Jake James Jamie Jane Janet Janice Jared Jasmine Jason Javier Jay Jean Jeanne
Jeff Jeffery Jeffrey Jenna Jennifer Jenny Jeremiah Jeremy Jerry Jesse Jessica Jesus Jill Jillian
Jim Jimmy Jo Joan Joann Joanna Joanne Jodi Joe Joel John Johnny Jon Jonathan Jordan Jorge Jose
Joseph Josephine Joshua Joy Joyce Juan Judith Judy Julia Julian Julie Justin Kaitlyn Karen Kari
Karl Katherine Kathleen Kathryn Kathy Katie Katrina Kayla Keith Kelly Kelsey Ken Kendra Kenneth
Kerry Kevin Kim Kimberly Kirk Kristen Kristin Kristina Kristy Krystal Kurt Kyle Lance Larry Laura
Lauren Laurie Lawrence Leah Lee Leonard Leslie Levi Linda Lindsay Lindsey Lisa Logan Lori Louis
Lucas Lucy Luis Luke Lynn Madison Maria Marie Marilyn Mario Marissa Mark Marsha Martha Martin
Marvin Mary Mason Matthew Maureen Megan Melanie Melinda Melissa Melvin Meredith Michael Micheal
Michele Michelle Miguel Mike Mindy Miranda Misty Mitchell Molly Monica Monique Morgan Nancy
Natalie Nathan Nathaniel Neil Nicholas Nicole Noah Norma Norman Olivia Oscar Pamela Patricia
Patrick Paul Paula Peggy Penny Peter Philip Phillip Priscilla Rachel Ralph Randall Randy Raymond
Rebecca Regina Renee Rhonda Ricardo Richard Ricky Riley Rita Robert Roberta Robin Rodney Roger
Ronald Ronnie Rose Ross Roy Ruben Russell Ruth Ryan Sabrina Sally Samantha Samuel Sandra Sara
Sarah Scott Sean Sergio Seth Shane Shannon Sharon Shawn Sheila Shelby Shelly Sherry Shirley
Sierra Sophia Spencer Stacey Stacy Stanley Stephanie Stephen Steve Steven Susan Suzanne Sydney
Tamara Tammy Tanya Tara Taylor Teresa Terri Terry Theodore Theresa Thomas Tiffany Timothy Tina
Todd Tom Tommy Toni Tony Tracey Tracy Travis Trevor Troy Tyler Valerie Vanessa Veronica Vicki
Vickie Victor Victoria Vincent Virginia Walter Wanda Warren Wayne Wendy Wesley William Willie
Xavier Yolanda Yvonne Zachary Zoe
Ahmed Ali Anja Arjun Carmen Chen Dmitri Elena Fatima Francesca Giovanni Hans Ingrid Ivan Jan
Jens Juan Jürgen Kai Klaus Lars Lena Lukas Marco Mohammed Muhammad Olga Pablo Pierre Priya Rahul
Sofia Sven Wei Yuki Zhang
Abdul Adriana Agnes Aisha Alberto Alejandro Alfred Alison Allen Alma Alvin Amelia Ana Andre Andres
Angel Angelica Angelo Anton Antoine Ashton Ava Barney Beatrice Becky Ben Benny Bernice Bertha
Blake Bobbie Bradford Brendan Bret Brittney Bryce Byron Camille Candace Carlton Carly Carolina
Cassandra Cecil Cecilia Cedric Celia Chadwick Chester Chidi Clara Claude Clifton Clint Clyde
Colby Cole Conrad Cora Corey Cory Cristina Daniela Dante Darius Darnell Darrell Deanna Deborah
Delia Della Delores Demetrius Derick Devin Devon Dexter Diego Dolores Dominique Dora Duane Dwight
Edith Edna Eduardo Edwin Efrain Elisa Elise Ella Ellie Elliot Elmer Eloise Elsa Emanuel Emilio
Enrique Esther Ethel Eugenia Everett Fabian Faye Felix Fiona Flora Florence Floyd Francesca
Francisco Freddie Gabriela Garrett Genevieve Geraldine Gilbert Gina Giovanna Gladys Gregg Guadalupe
Gustavo Guy Gwen Harriet Harvey Hazel Herbert Herman Hilda Hugh Hugo Ida Ignacio Imani Inez Irene
Iris Irma Irving Isaiah Ivy Jacqueline Jaden Jamal Janelle Janie Jeanette Jenifer Jerome Jessie
Jocelyn Johanna Jonah Josefina Juanita Julio Julius June Kara Karina Kate Katharine Kaye Keisha
Kenny Kerri Kimberley Kristopher Lakisha Lamar Latoya Laverne Leila Leon Leonardo Leroy Lester
Lillian Lily Lionel Lloyd Lois Lonnie Lora Loretta Lorraine Louise Lucia Lucille Luther Lydia Lyle
Mabel Mack Mae Malcolm Mandy Manuel Marc Marcia Marco Marcus Margaret Margarita Marguerite Mariah
Marian Marianne Marjorie Marlene Marshall Marta Maryann Mathew Matilda Mattie Maurice Max Maxine
Maya Mercedes Mia Milton Minnie Miriam Mona Myra Myrtle Nadia Naomi Nash Nell Nellie Nelson
Nichole Nick Nina Noel Nora Olive Oliver Omar Orlando Otis Owen Pat Patsy Pearl Pedro Percy
Perry Phyllis Preston Rafael Ramon Ramona Raquel Raul Reginald Rene Rex Rhonda Roberto Rochelle
Rodolfo Roland Rolando Ronda Rosa Rosalie Rosemary Roxanne Rudolph Rufus Sadie Salvador Sam
Santiago Saul Selena Serena Shanna Shari Sheldon Sherman Silvia Simon Sonia Sonya Stella Stuart
Sue Susie Sylvia Terrence Thelma Tim Tobias Tonya Tracie Tristan Tyrone Ursula Velma Vera Vern
Vernon Vicky Viola Violet Wade Wallace Wendell Wilbur Wilma Winston Yvette Zachariah
""".split())
# Given names that are also common words or places in title-case headings ("Bill Payment",
# "Grant Agreement", "Virginia Beach") are left to the labels and the model.
_ALL_GIVEN = FIRST_NAMES
FIRST_NAMES -= frozenset("""Bill Grant Amber Joy Crystal Rose Dawn Penny Mark Frank Hunter Holly
Georgia Virginia Sierra Jordan Austin Lance Glen Dale Jack Lee Jean Kim Jo Jay Chase Carmen Sydney
Victoria Madison Logan Taylor Morgan Riley Casey Shelby Brooke Destiny Miranda Ross Gene Earl
Hannah Kai Chen Wei Zhang""".split())
# The surname may start the next line (wrapped text); further words stay on its line.
_FIRST_LAST = _m(r"(?<![\w-])(" + _NAME_WORD + r")((?:[ \t]+|[ \t]*\n[ \t]*)(?:[A-Z]\.|" + _NAME_WORD
                 + r")(?:[ \t]+(?:[A-Z]\.|" + _NAME_WORD + r"))?)(?![\w-])")


# "Marcus T. Whitfield": a middle initial between two capitalised words marks a full name.
_MIDDLE_INITIAL = _m(r"(?<![\w-])(" + _NAME_WORD + r"[ \t]+[A-Z]\.[ \t]+" + _NAME_WORD + r")")


# A chat or transcript speaker: a given name alone before a colon at the start of a line.
_SPEAKER = _m(r"(?m)^(?:[ \t]*\[[^\]\n]{1,20}\])?[ \t]*(" + _NAME_WORD + r"):")


def find_names(text: str) -> Iterator[Span]:
    for m in _SPEAKER.finditer(text):
        # Line-initial "Mark:" is a speaker even where "Mark Payment" would not be a name; after a
        # [timestamp] any capitalised word that is not a heading word is.
        stamped = text[m.start():m.start(1)].strip().startswith("[")
        if m.group(1) in _ALL_GIVEN or (stamped and m.group(1) not in _NOT_NAMES):
            yield Span(m.start(1), m.end(1), "PERSON", "name-heuristic")
    for m in _MIDDLE_INITIAL.finditer(text):
        words = m.group(1).split()
        if words[0] not in _NOT_NAMES and words[-1] not in _NOT_NAMES:
            yield from _name_span(text, m.start(1), m.end(1))
    for rx in (_TITLE, _NAME_LABEL, _NAME_LABEL_ALT, _DEAR, _PARTY, _NAME_BEFORE_EMAIL, _SIGNOFF):
        for m in rx.finditer(text):
            yield from _name_span(text, m.start(1), m.end(1))
    for m in _FIRST_LAST.finditer(text):
        if m.group(1) in FIRST_NAMES:
            rest = m.group(2).split()
            if rest[0] not in _NOT_NAMES and rest[0] not in _NOT_SURNAMES:
                yield from _name_span(text, m.start(1), m.end(2))


_ORG_LEAD_STOP = frozenset("The This That These Those A An At In On For With And Or But Dear Re To From "
                           "By Of Our Your Their His Her Its".split())


def find_orgs(text: str) -> Iterator[Span]:
    for m in _ORG.finditer(text):
        g = 1 if m.group(1) else (2 if m.group(2) else 3)
        s, e = m.start(g), m.end(g)
        if g == 3:
            if text[s:e].split("-")[0] in _HYPHEN_NOT_ORG:
                continue
            yield Span(s, e, "ORGANIZATION", "org-heuristic")
            continue
        words = text[s:e].split()
        while len(words) > 2 and words[0] in _ORG_LEAD_STOP:
            s = text.find(words[1], s + len(words[0]))
            words.pop(0)
        if len(words) > 1:
            yield Span(s, e, "ORGANIZATION", "org-heuristic")


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------

RECOGNIZERS: dict[str, tuple[tuple[str, ...], Callable[[str], Iterable[Span]]]] = {
    # name: (types it can produce, function)
    "email": (("EMAIL",), find_emails),
    "url": (("URL",), find_urls),
    "ip": (("IP_ADDRESS",), find_ips),
    "mac": (("DEVICE",), find_macs),
    "card": (("CREDIT_CARD",), find_cards),
    "iban": (("IBAN",), find_ibans),
    "ssn": (("SSN",), find_ssns),
    "phone": (("PHONE",), find_phones),
    "date": (("DATE",), find_dates),
    "age": (("AGE",), find_ages),
    "geography": (("ZIP", "ADDRESS", "LOCATION"), find_geography),
    "labelled": (("MRN", "HEALTH_PLAN", "ACCOUNT", "LICENSE", "PASSPORT", "VEHICLE", "DEVICE", "ID"),
                 find_labelled),
    "vin": (("VEHICLE",), find_vins),
    "generic-id": (("ID", "ACCOUNT"), find_generic_ids),
    "names": (("PERSON",), find_names),
    "orgs": (("ORGANIZATION",), find_orgs),
}


# Dot leaders and fill-in lines between a form's label and its value ("Policy number .... 1234",
# "Name: ______ Jane"), table bars and JSON quotes ('| MRN | 123 |', '"mrn": "123"'): blanked to
# spaces of the same length before matching, so offsets hold.
_LEADERS = _m(r"[.\u00b7\u2026_]{3,}|\.\.(?= )|\u2026|[|\"]")


def find_all(text: str, types: Iterable[str] | None = None) -> list[Span]:
    """Every span any recognizer finds (overlapping, unsorted duplicates removed)."""
    want = set(types) if types else None
    text = _LEADERS.sub(lambda m: " " * len(m.group()), text)
    out: set[Span] = set()
    for produced, fn in RECOGNIZERS.values():
        if want is not None and not want.intersection(produced):
            continue
        for sp in fn(text):
            if sp.end > sp.start and (want is None or sp.type in want):
                out.add(sp)
    return sorted(out, key=lambda sp: (sp.start, -sp.end))


# Shape-only detectors whose type a label on the same value overrides ("MRN: 004-55-2918" is an
# MRN although it has an SSN's shape).
_WEAK = frozenset({"ssn", "phone"})


def merge_spans(spans: Iterable[Span]) -> list[Span]:
    """Overlapping or touching-inside spans become one; its type is the most specific one."""
    items = sorted(spans, key=lambda sp: (sp.start, -sp.end))
    merged: list[list] = []
    for sp in items:
        if merged and sp.start < merged[-1][1]:
            cur = merged[-1]
            cur[1] = max(cur[1], sp.end)
            cur[2].append(sp)
        else:
            merged.append([sp.start, sp.end, [sp]])
    out = []
    for s, e, parts in merged:
        best = min(parts, key=lambda p: (PRIORITY.get(p.type, 99) + (50 if p.detector in _WEAK else 0),
                                         -(p.end - p.start)))
        out.append(Span(s, e, best.type, best.detector))
    return out
