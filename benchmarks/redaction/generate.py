"""Seeded generator of labelled synthetic documents for the redaction benchmark.

Seven kinds (clinical notes, bank letters, contracts, e-mails, claim forms with dot leaders, chat
transcripts, structured records: table, CSV, JSON, log line), each assembled from sentences in
which every personal value is recorded with its type and character offsets as it is appended;
confounders (doses, money, versions, page numbers, codes) are mixed in to measure precision.
Values come from Faker (a test/benchmark dependency, never imported by the tool) in several
locales, written in many real-world formats. No network: Faker's data ships with the package.

    python benchmarks/redaction/generate.py --n 200 --seed 7 -o docs.jsonl

Each JSON line: {"id", "kind", "text", "entities": [{"type", "start", "end", "value"}]}.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import random
import string
import sys
from datetime import date

from faker import Faker

PHONE_LOCALES = ["en_US", "en_GB", "de_DE", "fr_FR", "en_AU", "en_CA", "it_IT", "nl_NL", "es_ES", "en_IN"]
IBAN_LOCALES = ["en_GB", "de_DE", "fr_FR", "nl_NL", "es_ES", "it_IT", "en_IE", "pl_PL"]


class Doc:
    """Text built piece by piece; ``e()`` records an entity at the offsets it lands on."""

    def __init__(self, kind: str):
        self.kind, self.parts, self.ents, self.n = kind, [], [], 0

    def t(self, s: str) -> "Doc":
        self.parts.append(s)
        self.n += len(s)
        return self

    def e(self, typ: str, value: str) -> "Doc":
        self.ents.append({"type": typ, "start": self.n, "end": self.n + len(value), "value": value})
        return self.t(value)

    def text(self) -> str:
        return "".join(self.parts)


def _vin_check(v17: str) -> str:
    vals = {**{str(d): d for d in range(10)}, **dict(zip("ABCDEFGH", range(1, 9))),
            **dict(zip("JKLMN", range(1, 6))), "P": 7, "R": 9, **dict(zip("STUVWXYZ", range(2, 10)))}
    w = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
    c = sum(vals[ch] * wi for ch, wi in zip(v17, w)) % 11
    return v17[:8] + ("X" if c == 10 else str(c)) + v17[9:]


class Values:
    """Personal values in many formats, all from one seeded RNG."""

    def __init__(self, seed: int):
        self.r = random.Random(seed)
        self.f = Faker("en_US")
        self.f.seed_instance(seed)
        self.loc = {}
        for i, loc in enumerate(sorted(set(PHONE_LOCALES + IBAN_LOCALES))):
            fk = Faker(loc)
            fk.seed_instance(seed * 100 + i)
            self.loc[loc] = fk

    def pick(self, seq):
        return self.r.choice(seq)

    def digits(self, n: int) -> str:
        return "".join(self.r.choice(string.digits) for _ in range(n))

    def letters(self, n: int) -> str:
        return "".join(self.r.choice(string.ascii_uppercase) for _ in range(n))

    # -- shaped ------------------------------------------------------------------------------
    def phone(self) -> str:
        r = self.r
        a, b, c = str(r.randint(201, 989)), str(r.randint(200, 999)), self.digits(4)
        custom = [f"({a}) {b}-{c}", f"{a}.{b}.{c}", f"{a}-{b}-{c}", f"+1-{a}-{b}-{c} ext. {r.randint(1, 999)}",
                  f"+1 ({a}) {b}-{c}", f"1-800-{b}-{c}", f"+44 20 {self.digits(4)} {self.digits(4)}",
                  f"+33 1 {self.digits(2)} {self.digits(2)} {self.digits(2)} {self.digits(2)}",
                  f"{a} {b} {c}", f"({a}) {b}-{c} x{r.randint(10, 9999)}", f"+49 30 {self.digits(7)}",
                  f"020 {self.digits(4)} {self.digits(4)}", f"07700 {self.digits(6)}", f"+1.{a}.{b}.{c}"]
        if r.random() < 0.5:
            return r.choice(custom)
        return self.loc.get(r.choice(PHONE_LOCALES), self.f).phone_number() if r.random() < 0.6 \
            else self.f.phone_number()

    def date(self, dob: bool = False) -> str:
        d = self.f.date_of_birth(minimum_age=1, maximum_age=88) if dob else \
            self.f.date_between(date(2015, 1, 1), date(2026, 10, 1))
        day = d.day
        suffix = "th" if 11 <= day <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
        fmts = [d.strftime("%m/%d/%Y"), d.strftime("%d.%m.%Y"), f"{d.strftime('%B')} {day}, {d.year}",
                f"{day} {d.strftime('%b')} {d.year}", d.isoformat(), f"{d.month}/{day}/{d.strftime('%y')}",
                f"{d.strftime('%b')} {day}, {d.year}", f"{day} {d.strftime('%B')} {d.year}",
                f"{d.strftime('%A')}, {d.strftime('%B')} {day}, {d.year}", d.strftime("%d-%b-%Y"),
                d.strftime("%d/%m/%Y"), f"{d.strftime('%b')}. {day}, {d.year}",
                f"{day}{suffix} {d.strftime('%B')} {d.year}", f"{d.strftime('%B')} {day}{suffix}, {d.year}",
                d.strftime("%d-%b-%y").upper(), d.strftime("%Y/%m/%d")]
        return self.r.choice(fmts)

    def ssn(self, labelled: bool) -> str:
        s = self.f.ssn()
        if labelled and self.r.random() < 0.3:
            return s.replace("-", "")
        return s

    def card(self) -> str:
        n = self.f.credit_card_number(card_type=self.pick(
            ["visa16", "mastercard", "amex", "discover", "visa16", "jcb16", "diners"]))
        style = self.r.random()
        if style < 0.35:
            return n
        sep = " " if style < 0.7 else "-"
        if len(n) == 15:
            return sep.join([n[:4], n[4:10], n[10:]])
        return sep.join(n[i:i + 4] for i in range(0, len(n), 4))

    def iban(self) -> str:
        s = self.loc[self.pick(IBAN_LOCALES)].iban()
        if self.r.random() < 0.6:
            return " ".join(s[i:i + 4] for i in range(0, len(s), 4))
        return s

    def ip(self) -> str:
        k = self.r.random()
        if k < 0.4:
            return self.f.ipv4()
        if k < 0.55:
            return self.f.ipv4_private()
        v6 = ipaddress.IPv6Address(self.f.ipv6())
        if k < 0.75:
            return str(v6)              # compressed form
        if k < 0.9:
            return v6.exploded
        return self.pick(["fe80::1ff:fe23:4567:890a", "2001:db8::8a2e:370:7334", "::ffff:192.0.2.128",
                          f"2001:db8:{self.r.randint(1, 0xffff):x}::{self.r.randint(1, 0xffff):x}"])

    def url(self) -> str:
        k = self.r.random()
        if k < 0.35:
            return self.f.url()
        if k < 0.6:
            return "www." + self.f.domain_name() + self.pick(["", "/", "/patients/" + self.digits(5)])
        if k < 0.8:
            return self.f.uri()
        return self.f.domain_name() + "/" + self.f.uri_path()

    def email(self) -> str:
        return self.pick([self.f.email, self.f.company_email, self.f.free_email])()

    def mrn(self) -> str:
        return self.pick([self.digits(8), "MRN-" + self.digits(7), self.digits(4) + "-" + self.digits(2),
                          self.letters(1) + self.digits(7), self.digits(10), self.digits(3) + "-" + self.digits(3) + "-" + self.digits(3)])

    def member_id(self) -> str:
        return self.pick([self.letters(3) + self.digits(9), self.letters(2) + "-" + self.digits(7),
                          self.digits(11), self.letters(1) + self.digits(8) + self.letters(2),
                          self.digits(4) + self.letters(3) + self.digits(3)])

    def account(self) -> str:
        return self.pick([self.digits(10), self.digits(8), self.f.bban(), self.digits(4) + "-" + self.digits(6),
                          self.digits(3) + " " + self.digits(3) + " " + self.digits(4)])

    def license(self) -> str:
        return self.pick([self.letters(1) + self.digits(7), self.digits(9), self.letters(2) + self.digits(6),
                          self.letters(1) + self.digits(3) + "-" + self.digits(4) + "-" + self.digits(4)])

    def passport(self) -> str:
        return self.f.passport_number() if self.r.random() < 0.6 else self.letters(2) + self.digits(7)

    def vin(self) -> str:
        if self.r.random() < 0.5:
            return self.f.vin()
        chars = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
        return _vin_check("".join(self.r.choice(chars) for _ in range(17)))

    def plate(self) -> str:
        return self.f.license_plate()

    def serial(self) -> str:
        return self.pick(["SN-" + self.digits(5) + "-" + self.letters(1), self.letters(3) + self.digits(8),
                          self.digits(4) + "-" + self.letters(2) + "-" + self.digits(4), self.f.mac_address()])

    # -- free --------------------------------------------------------------------------------
    def person(self) -> str:
        return self.pick([self.f.name, lambda: f"{self.f.first_name()} {self.f.last_name()}"])()

    def org(self) -> str:
        return self.f.company()

    def city(self) -> str:
        return self.f.city()


# Confounders: numbers and dates-looking strings that are NOT personal data.
def confounder(v: Values) -> str:
    r = v.r
    return r.choice([
        f"The dose was increased to {r.randint(5, 900)} mg twice daily.",
        f"Blood pressure {r.randint(100, 160)}/{r.randint(60, 100)} mmHg, pulse {r.randint(50, 110)}.",
        f"The total due is ${r.randint(100, 99999):,}.{r.randint(0, 99):02d}.",
        f"See page {r.randint(2, 40)} of {r.randint(41, 90)}.",
        f"This form was produced with version {r.randint(1, 9)}.{r.randint(0, 20)}.{r.randint(0, 30)} of the software.",
        f"The study enrolled {r.randint(1000, 9999):,} patients in {r.randint(1990, 2024)}.",
        f"Interest accrues at {r.randint(1, 9)}.{r.randint(0, 99):02d}% per year.",
        f"HbA1c was {r.randint(5, 12)}.{r.randint(0, 9)}% and glucose {r.randint(70, 300)} mg/dL.",
        f"ICD-10 code E{r.randint(10, 14)}.{r.randint(0, 9)} was recorded.",
        f"Clause {r.randint(1, 20)}.{r.randint(1, 9)} applies to section {r.randint(1, 12)}.",
        f"A fee of EUR {r.randint(1, 999)} {r.randint(100, 999)} is payable.",
        f"Order quantity: {r.randint(2, 500)} units at {r.randint(1, 99)}.{r.randint(0, 99):02d} each.",
    ])


def _address(d: Doc, v: Values, one_line: bool = False) -> None:
    f = v.f
    d.e("ADDRESS", f.street_address()).t(", " if one_line else "\n")
    d.e("LOCATION", f.city()).t(", " + f.state_abbr() + " ").e("ZIP", f.zipcode() if v.r.random() < 0.8 else f.zipcode_plus4())


def clinical(v: Values) -> Doc:
    d, r, f = Doc("clinical"), v.r, v.f
    patient, doctor = v.person(), v.person()
    d.t("CLINICAL NOTE\nPatient: ").e("PERSON", patient).t("\n")
    d.t(v.pick(["MRN: ", "Medical Record Number ", "MR# ", "Med Rec No. "])).e("MRN", v.mrn()).t("\n")
    d.t(v.pick(["DOB: ", "Date of Birth: ", "D.O.B. "])).e("DATE", v.date(dob=True)).t("\n")
    d.t(v.pick(["Member ID: ", "Health Plan ID: ", "Subscriber ID: ", "Policy #: "])).e("HEALTH_PLAN", v.member_id()).t("\n")
    d.t("Address: ")
    _address(d, v, one_line=True)
    d.t("\n" + v.pick(["Phone: ", "Tel: ", "Mobile: ", "Cell: "])).e("PHONE", v.phone()).t("\n\n")
    body = [
        lambda: d.t("Seen on ").e("DATE", v.date()).t(f" by Dr. ").e("PERSON", doctor).t(" at ").e("ORGANIZATION", v.org() + " Hospital").t(".\n"),
        lambda: d.e("PERSON", surname(patient)).t(f" reports chest pain for {r.randint(2, 9)} days. ").t(confounder(v) + "\n"),
        lambda: d.t("Emergency contact: ").e("PERSON", v.person()).t(", reachable at ").e("PHONE", v.phone()).t(".\n"),
        lambda: d.t("Pacemaker S/N: ").e("DEVICE", v.serial()).t("; follow-up on ").e("DATE", v.date()).t(".\n"),
        lambda: d.t("Patient portal: ").e("URL", v.url()).t(" (login ").e("EMAIL", v.email()).t(").\n"),
        lambda: d.t("Lab result uploaded from ").e("IP_ADDRESS", v.ip()).t(". " + confounder(v) + "\n"),
        lambda: d.t("SSN: ").e("SSN", v.ssn(True)).t(". Driver's License: ").e("LICENSE", v.license()).t(".\n"),
        lambda: d.t("Fax results to ").e("PHONE", v.phone()).t(" before ").e("DATE", v.date()).t(".\n"),
        lambda: d.t(confounder(v) + " " + confounder(v) + "\n"),
    ]
    r.shuffle(body)
    for b in body[: r.randint(5, len(body))]:
        b()
    d.t("\nSigned,\n").e("PERSON", doctor).t(", MD\n")
    return d


def bank(v: Values) -> Doc:
    d, r, f = Doc("bank"), v.r, v.f
    bank_name, client = v.org() + " Bank", v.person()
    d.e("ORGANIZATION", bank_name).t("\n")
    _address(d, v)
    d.t("\n\n").e("DATE", v.date()).t("\n\n")
    d.e("PERSON", client).t("\n")
    _address(d, v)
    d.t("\n\nDear ").e("PERSON", client).t(",\n\n")
    body = [
        lambda: d.t("Your account ").t(v.pick(["No. ", "number ", "#"])).e("ACCOUNT", v.account()).t(" has been updated. " + confounder(v) + "\n"),
        lambda: d.t("Please transfer the balance to IBAN ").e("IBAN", v.iban()).t(".\n"),
        lambda: d.t("The card ending in your file, ").e("CREDIT_CARD", v.card()).t(", was blocked on ").e("DATE", v.date()).t(".\n"),
        lambda: d.t("For verification we hold your SSN ").e("SSN", v.ssn(False)).t(" and passport No. ").e("PASSPORT", v.passport()).t(".\n"),
        lambda: d.t("Questions? Call us at ").e("PHONE", v.phone()).t(" or write to ").e("EMAIL", v.email()).t(".\n"),
        lambda: d.t("Online banking: ").e("URL", v.url()).t(". Last login from ").e("IP_ADDRESS", v.ip()).t(".\n"),
        lambda: d.t("Loan collateral: vehicle VIN ").e("VEHICLE", v.vin()).t(", plate ").e("VEHICLE", v.plate()).t(".\n"),
        lambda: d.t(confounder(v) + " " + confounder(v) + "\n"),
        lambda: d.t("Customer ID: ").e("ACCOUNT", v.account()).t(". " + confounder(v) + "\n"),
    ]
    r.shuffle(body)
    for b in body[: r.randint(5, len(body))]:
        b()
    officer = v.person()
    d.t("\nSincerely,\n").e("PERSON", officer).t("\nCustomer Services, ").e("ORGANIZATION", bank_name).t("\n")
    return d


def contract(v: Values) -> Doc:
    d, r, f = Doc("contract"), v.r, v.f
    a, b, co = v.person(), v.person(), v.org()
    d.t("SERVICE AGREEMENT\n\nThis Agreement is made on ").e("DATE", v.date()).t(" by and between ")
    d.e("PERSON", a).t(", residing at ")
    _address(d, v, one_line=True)
    d.t(" (the \"Client\"), and ").e("ORGANIZATION", co).t(", represented by ").e("PERSON", b).t(".\n\n")
    body = [
        lambda: d.t("1. Payment. Fees are paid to account ").e("IBAN", v.iban()).t(". " + confounder(v) + "\n"),
        lambda: d.t("2. Notices go to ").e("EMAIL", v.email()).t(" or by phone to ").e("PHONE", v.phone()).t(".\n"),
        lambda: d.t("3. The Client's Driver's License: ").e("LICENSE", v.license()).t(" and Passport Number: ").e("PASSPORT", v.passport()).t(".\n"),
        lambda: d.t("4. Term. This agreement ends on ").e("DATE", v.date()).t(". " + confounder(v) + "\n"),
        lambda: d.t("5. Equipment serial number: ").e("DEVICE", v.serial()).t(", installed at ").e("IP_ADDRESS", v.ip()).t(".\n"),
        lambda: d.t("6. Tax ID (SSN): ").e("SSN", v.ssn(True)).t(". " + confounder(v) + "\n"),
        lambda: d.t("7. Acct No. ").e("ACCOUNT", v.account()).t(" will be debited monthly.\n"),
        lambda: d.t(confounder(v) + "\n"),
    ]
    r.shuffle(body)
    for x in body[: r.randint(5, len(body))]:
        x()
    d.t("\nSigned: ").e("PERSON", a).t("  Date: ").e("DATE", v.date()).t("\nSigned: ").e("PERSON", b).t("\n")
    return d


def email(v: Values) -> Doc:
    d, r, f = Doc("email"), v.r, v.f
    sender, to = v.person(), v.person()
    d.t("From: ").e("PERSON", sender).t(" <").e("EMAIL", v.email()).t(">\nTo: ").e("PERSON", to).t(" <").e("EMAIL", v.email()).t(">\n")
    d.t("Date: ").e("DATE", v.date()).t("\nSubject: follow-up\n\nHi ").e("PERSON", to.split()[0]).t(",\n\n")
    body = [
        lambda: d.t("My new number is ").e("PHONE", v.phone()).t(", the old one ").e("PHONE", v.phone()).t(" is gone.\n"),
        lambda: d.t("The shared folder is at ").e("URL", v.url()).t(". " + confounder(v) + "\n"),
        lambda: d.t("Can you pay the invoice by card ").e("CREDIT_CARD", v.card()).t("?\n"),
        lambda: d.t("We meet at ").e("ADDRESS", f.street_address()).t(" in ").e("LOCATION", v.city()).t(" on ").e("DATE", v.date()).t(".\n"),
        lambda: d.t("The VPN gateway is ").e("IP_ADDRESS", v.ip()).t(". " + confounder(v) + "\n"),
        lambda: d.t("Her SSN is ").e("SSN", v.ssn(False)).t(" and her MRN: ").e("MRN", v.mrn()).t(".\n"),
        lambda: d.t("Send it to ").e("PERSON", v.person()).t(" at ").e("ORGANIZATION", v.org()).t(".\n"),
        lambda: d.t(confounder(v) + "\n"),
    ]
    r.shuffle(body)
    for x in body[: r.randint(4, len(body))]:
        x()
    d.t("\nBest regards,\n").e("PERSON", sender).t("\n").e("PHONE", v.phone()).t("\n")
    return d


def claim(v: Values) -> Doc:
    """A form: dot leaders between labels and values, a town line without a state."""
    d, r, f = Doc("claim"), v.r, v.f
    d.t("INSURANCE CLAIM FORM\n\nSection A - Claimant\n")
    d.t("Full name ........ ").e("PERSON", v.person()).t("\n")
    d.t("Date of birth .... ").e("DATE", v.date(dob=True)).t("\n")
    d.t("Home address ..... ").e("ADDRESS", f.street_address()).t("\n                   ")
    d.e("LOCATION", v.city()).t(" ").e("ZIP", f.zipcode()).t("\n")
    d.t("Telephone (day) .. ").e("PHONE", v.phone()).t("\n")
    d.t("Email ............ ").e("EMAIL", v.email()).t("\n")
    d.t("Policy number .... ").e("HEALTH_PLAN", v.member_id()).t("\n")
    d.t("Social Security .. ").e("SSN", v.ssn(True)).t("\n\n")
    d.t("Section B - Incident\nOn ").e("DATE", v.date())
    d.t(f" at about {r.randint(1, 12)}:{r.randint(10, 59)} the claimant's car (reg. ").e("VEHICLE", v.plate())
    d.t(", VIN ").e("VEHICLE", v.vin()).t(") was hit.\n")
    d.t("Witness: ").e("PERSON", v.person()).t(", tel. ").e("PHONE", v.phone()).t(".\n")
    d.t("Treating clinician: ").e("PERSON", "Dr. " + f.last_name()).t(" (NPI ").e("LICENSE", v.digits(10)).t(").\n")
    d.t("Hospital record no. ").e("MRN", v.mrn()).t("; device ID ").e("DEVICE", v.serial()).t(".\n")
    d.t("Pay to: ").e("IBAN", v.iban()).t(" or card ").e("CREDIT_CARD", v.card()).t(".\n")
    d.t(confounder(v) + f" Reported {r.randint(1, 30)} days later.\n")
    d.t("Submitted online from ").e("IP_ADDRESS", v.ip()).t(" via ").e("URL", v.url()).t("\n")
    return d


def chat(v: Values) -> Doc:
    """A chat transcript: speakers by given name only, values in casual prose."""
    d, r, f = Doc("chat"), v.r, v.f
    a, b = f.first_name(), f.first_name()

    def say(who):
        return d.t(f"[{r.randint(8, 11)}:{r.randint(10, 59)}] ").e("PERSON", who).t(": ")
    say(a).t("hey can u send me ur new number\n")
    say(b).t("sure its ").e("PHONE", v.phone()).t("\n")
    say(a).t("thx. also my bday is ").e("DATE", v.date(dob=True)).t(" lol\n")
    say(b).t("mail me at ").e("EMAIL", v.email()).t(" or check ").e("URL", v.url()).t("\n")
    say(a).t("my acct no is ").e("ACCOUNT", v.account()).t(" and ssn ").e("SSN", v.ssn(False)).t("\n")
    say(b).t("server ip ").e("IP_ADDRESS", v.ip()).t(", passport# ").e("PASSPORT", v.passport()).t("\n")
    say(a).t(confounder(v) + "\n")
    return d


def record(v: Values) -> Doc:
    """Structured exports: a Markdown table, CSV rows and a JSON record with a log line."""
    d, r, f = Doc("record"), v.r, v.f
    d.t("| Field | Value |\n|---|---|\n")
    for lab, typ, gen in [("Name", "PERSON", v.person), ("DOB", "DATE", lambda: v.date(dob=True)),
                          ("Phone", "PHONE", v.phone), ("MRN", "MRN", v.mrn),
                          ("Insurance", "HEALTH_PLAN", v.member_id), ("E-mail", "EMAIL", v.email),
                          ("SSN", "SSN", lambda: v.ssn(True)), ("Address", "ADDRESS", f.street_address)]:
        d.t(f"| {lab} | ").e(typ, gen()).t(" |\n")
    d.t("\nname,dob,phone,email,card,iban,ip\n")
    for _ in range(2):
        d.e("PERSON", v.person()).t(",").e("DATE", f.date_of_birth().isoformat()).t(",")
        d.e("PHONE", v.phone().replace(",", " ")).t(",").e("EMAIL", v.email()).t(",")
        d.e("CREDIT_CARD", f.credit_card_number()).t(",").e("IBAN", v.iban().replace(" ", "")).t(",")
        d.e("IP_ADDRESS", v.ip()).t("\n")
    d.t('\n{"patient": {"name": "').e("PERSON", v.person()).t('", "mrn": "').e("MRN", v.mrn())
    d.t('", "phone": "').e("PHONE", v.phone()).t('", "ssn": "').e("SSN", f.ssn())
    d.t('", "member_id": "').e("HEALTH_PLAN", v.member_id()).t('", "ip": "').e("IP_ADDRESS", v.ip()).t('"}}\n')
    d.t("log: user=").e("EMAIL", v.email()).t(" src=").e("IP_ADDRESS", v.ip()).t(" acct=").e("ACCOUNT", v.account())
    d.t(f" status={r.randint(200, 504)} bytes={r.randint(100, 99999)}\n")
    return d


def surname(name: str) -> str:
    words = [w for w in name.split() if w.rstrip(".") not in ("Dr", "Mr", "Mrs", "Ms", "Miss", "Mx",
                                                             "MD", "DDS", "PhD", "DVM", "Jr", "Sr",
                                                             "II", "III", "IV", "V")]
    return words[-1]


KINDS = {"clinical": clinical, "bank": bank, "contract": contract, "email": email, "claim": claim,
         "chat": chat, "record": record}


def generate(n: int, seed: int = 0) -> list[dict]:
    v = Values(seed)
    out = []
    kinds = list(KINDS)
    for i in range(n):
        kind = kinds[i % len(kinds)]
        d = KINDS[kind](v)
        text = d.text()
        for e in d.ents:
            assert text[e["start"]:e["end"]] == e["value"]
        out.append({"id": f"{kind}-{seed}-{i}", "kind": kind, "text": text, "entities": d.ents})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--output", default="-")
    a = ap.parse_args(argv)
    lines = "".join(json.dumps(doc) + "\n" for doc in generate(a.n, a.seed))
    if a.output == "-":
        sys.stdout.write(lines)
    else:
        with open(a.output, "w", encoding="utf-8") as fh:
            fh.write(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
