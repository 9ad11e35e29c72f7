"""Every letter the product sends: its kind, who reads it, its subject per language, the
facts its template needs, and, for a Notice of Action, the rule each action rests on.

Pure data, imported by workflows (to fill a notice's subject) and by the renderer."""

from __future__ import annotations

from dataclasses import dataclass, field

LANGUAGES = ("en", "es")  # letters are written in these; every other family gets English + taglines
# The family's preferred language as captured at referral: the letter languages plus the
# tagline languages (W&I Code 14029.92).
PREFERRED = ("en", "es", "vi", "zh", "tl", "ko", "hy", "ru", "fa", "ar", "km", "hmn", "pa", "ja", "hi", "lo")


@dataclass(frozen=True)
class LetterKind:
    audience: str  # "family" or "referrer"
    subject: dict[str, str]  # no PHI: subjects travel in clear over e-mail
    facts: tuple[str, ...] = ()  # facts the template needs (beyond name, county, date)
    optional: tuple[str, ...] = field(default=())


KINDS: dict[str, LetterKind] = {
    "application_packet": LetterKind("family", {"en": "Your CCS application", "es": "Su solicitud de CCS"}),
    "second_notice": LetterKind("family", {"en": "Second notice: your CCS application",
                                           "es": "Segundo aviso: su solicitud de CCS"}),
    "documents_request": LetterKind("family", {"en": "CCS needs papers from you", "es": "CCS necesita documentos"},
                                    ("due_on",)),
    "notice_of_action": LetterKind("family", {"en": "CCS Notice of Action", "es": "Aviso de Acción de CCS"},
                                   ("action", "reason", "basis", "appeal_until"), ("details",)),
    "case_open": LetterKind("family", {"en": "Your child is enrolled in CCS", "es": "Su hijo está inscrito en CCS"}),
    "case_closed": LetterKind("family", {"en": "Your CCS case is closed", "es": "Su caso de CCS está cerrado"},
                              ("closure",), ("merged_into",)),
    "appeal_decision": LetterKind("family", {"en": "CCS appeal decision", "es": "Decisión de su apelación de CCS"},
                                  ("outcome",), ("hearing_until", "condition")),
    "transfer": LetterKind("family", {"en": "Your CCS case moved", "es": "Su caso de CCS cambió de condado"},
                           ("from_county",)),
    "renewal_notice": LetterKind("family", {"en": "Your CCS renewal is due", "es": "Es hora de renovar CCS"},
                                 ("renew_by",)),
    "records_request": LetterKind("referrer", {"en": "CCS request for medical records",
                                               "es": "CCS pide expedientes médicos"}),
    "records_reminder": LetterKind("referrer", {"en": "Reminder: CCS request for medical records",
                                                "es": "Recordatorio: CCS pide expedientes médicos"}, ("reminder",)),
    "meals_lodging_received": LetterKind("family", {"en": "We received your travel request",
                                                    "es": "Recibimos su solicitud de viaje"},
                                         ("travel_start", "travel_end", "decide_by")),
    "meals_lodging_approved": LetterKind("family", {"en": "CCS travel help approved", "es": "CCS aprobó su ayuda de viaje"},
                                         ("travel_start", "travel_end", "amount", "receipts_by")),
    "reimbursement": LetterKind("family", {"en": "CCS travel payment", "es": "Pago de viaje de CCS"},
                                ("travel_start", "travel_end", "amount"), ("note",)),
    "receipts_reminder": LetterKind("family", {"en": "Reminder: send your travel receipts",
                                               "es": "Recordatorio: envíe sus recibos de viaje"},
                                    ("travel_start", "travel_end", "receipts_by")),
    "receipts_expired": LetterKind("family", {"en": "Travel receipts deadline passed",
                                              "es": "Pasó la fecha para los recibos de viaje"},
                                   ("travel_start", "travel_end")),
    "request_withdrawn": LetterKind("family", {"en": "Your CCS request was withdrawn",
                                               "es": "Su solicitud de CCS fue retirada"}, ("service",)),
    "request_cancelled": LetterKind("family", {"en": "Your CCS travel approval was cancelled",
                                               "es": "Se canceló su aprobación de viaje de CCS"},
                                    ("travel_start", "travel_end")),
    "case_closed_receipts": LetterKind("family", {"en": "Send your travel receipts", "es": "Envíe sus recibos de viaje"},
                                       ("travel_start", "travel_end", "receipts_by")),
    "authorization_extended": LetterKind("family", {"en": "CCS needs more time to decide",
                                                    "es": "CCS necesita más tiempo para decidir"},
                                         ("service", "reason", "decide_by")),
    "authorization_approved": LetterKind("family", {"en": "CCS service approved", "es": "CCS aprobó un servicio"},
                                         ("service", "number", "valid_from", "valid_until")),
    "authorization_pended": LetterKind("family", {"en": "CCS needs more facts to decide",
                                                  "es": "CCS necesita más datos para decidir"},
                                       ("service", "information", "working_days")),
    "grievance_acknowledged": LetterKind("family", {"en": "We got your complaint", "es": "Recibimos su queja"},
                                         ("resolve_by",), ("expedited",)),
    "grievance_resolved": LetterKind("family", {"en": "Our answer to your complaint",
                                                "es": "Nuestra respuesta a su queja"}, ("resolution",)),
}

# What a Notice of Action decides; each action's sentence lives in the templates.
NOA_ACTIONS = ("deny_case", "deny_condition", "deny_travel", "change_travel", "deny_service", "change_service",
               "close_application", "close_renewal")

# The rule each adverse decision rests on (22 CCR 42132 asks the notice to cite it).
RULES: dict[str, str] = {
    "eligibility": "22 CCR 41519 and HSC 123870",
    "medical_review": "22 CCR 41515.1 to 41518.9",
    "condition": "22 CCR 41515.1 to 41518.9",
    "renewal": "22 CCR 41610",
    "application": "22 CCR 41514",  # the application and its second notice
    # No narrower section is cited for these in the product's sources yet: the CCS Act.
    "meals_lodging": "HSC 123800 and after",
    "authorization": "HSC 123800 and after",
}


def subject(kind: str, language: str) -> str:
    return KINDS[kind].subject["es" if language == "es" else "en"]


def letter_language(preferred: str | None) -> str:
    """The language a letter is written in: Spanish for Spanish speakers, else English
    (the tagline block tells every other family how to get free help in theirs)."""
    return "es" if preferred == "es" else "en"
