"""Recog's workflow: the use cases every interface calls, and the domain's errors and types.

web/, cli/ and tasks/ import from here only; inside workflow/, modules import each other by
their full path. The sub-packages: policy (who may do what), cases (the case engine: fire,
storage, guards, deadlines, audit, outbox, sweep, reads), office (reference data),
transcripts (in and out), grading (conversion), decisions (notices, precedents, cohorts);
texts writes grades, ECTS credits, decimals and dates for people in their language, and
catalogues holds their words (the gettext catalogues of pages, e-mails and notices).
"""

from workflow.cases import (
    audit,
    outbox,
    queries,
)
from workflow.cases.casefile import (
    DOCUMENT_KINDS,
    DOCUMENT_TYPES,
    MAX_DOCUMENT_BYTES,
    assign_examiner,
    attach_document,
    check_document,
    export_decision_document,
    media_type_of,
    open_case,
    record_result_date,
    set_targets,
)
from workflow.cases.deadlines import (
    reminder_kinds,
)
from workflow.cases.documents import (
    DocumentStore,
    FileStore,
)
from workflow.cases.engine import (
    StaleVersion,
    fire,
)
from workflow.cases.guards import (
    CRITERIA,
    GERMAN_STEPS,
    objectionable,
    procedure,
    why_no_objection,
)
from workflow.cases.outbox import (
    Addressee,
    Claimed,
)
from workflow.cases.sweep import (
    sweep,
)
from workflow.catalogues import LANGUAGES as CATALOGUE_LANGUAGES
from workflow.catalogues import N_, Say, say, translations
from workflow.catalogues import criteria as criterion_words
from workflow.decisions.cohort import (
    COHORT_EVENTS,
    CONVERTING_EVENTS,
    decide,
    methods,
    preview,
    waiting_cases,
    waiting_cohorts,
)
from workflow.decisions.notice_issue import (
    NOTICE_EVENTS,
    NoticePreview,
    keep_notice,
    notice_inputs,
    preview_notice,
)
from workflow.decisions.notices import (
    Notice,
    render_notice,
    render_notice_html,
)
from workflow.decisions.precedents import (
    inconsistent,
)
from workflow.demo import (
    has_data,
    seed_demo,
)
from workflow.demo import (
    refuse_in_production as refuse_demo_in_production,
)
from workflow.errors import (
    Conflict,
    DomainError,
    Forbidden,
    GuardFailed,
    IllegalTransition,
    NotFound,
    TooLarge,
    UnsupportedDocument,
    ValidationFailed,
)
from workflow.grading.grades import (
    DEFAULT_SCHEMES,
    DIFFERENCE_THRESHOLD,
    ROUNDINGS,
    Conversion,
    bavarian,
    compare,
    convert,
    rounding_policy,
)
from workflow.grading.tables import (
    CaseTables,
    case_side_by_side,
    convert_by_tables,
    delete_table,
    get_table,
    import_file,
    list_tables,
)
from workflow.office import (
    catalog,
)
from workflow.office.catalog import (
    MIN_PASSWORD_LENGTH,
    set_student_password,
)
from workflow.office.zones import (
    case_zones,
    institution_zone,
)
from workflow.policy import (
    accounts,
    auth,
)
from workflow.policy.actors import (
    Actor,
    Scope,
    acting_role,
)
from workflow.policy.auth import (
    status_link_for_delivery,
)
from workflow.policy.permissions import (
    DOCUMENT_ACTIONS,
    Action,
    allowed,
    document_kinds,
    require,
)
from workflow.texts import (
    format_credits,
    format_date,
    format_datetime,
    format_decimal,
    format_ects,
    format_grade,
    format_instant,
)
from workflow.transcripts.elmo import (
    TranscriptRejected,
)
from workflow.transcripts.importing import (
    ImportReport,
    import_transcript,
    match_by_hand,
    pending,
)

__all__ = [
    "CATALOGUE_LANGUAGES",
    "COHORT_EVENTS",
    "CONVERTING_EVENTS",
    "CRITERIA",
    "DEFAULT_SCHEMES",
    "DIFFERENCE_THRESHOLD",
    "DOCUMENT_ACTIONS",
    "DOCUMENT_KINDS",
    "DOCUMENT_TYPES",
    "GERMAN_STEPS",
    "MAX_DOCUMENT_BYTES",
    "MIN_PASSWORD_LENGTH",
    "NOTICE_EVENTS",
    "N_",
    "ROUNDINGS",
    "Action",
    "Actor",
    "Addressee",
    "CaseTables",
    "Claimed",
    "Conflict",
    "Conversion",
    "DocumentStore",
    "DomainError",
    "FileStore",
    "Forbidden",
    "GuardFailed",
    "IllegalTransition",
    "ImportReport",
    "NotFound",
    "Notice",
    "NoticePreview",
    "Say",
    "Scope",
    "StaleVersion",
    "TooLarge",
    "TranscriptRejected",
    "UnsupportedDocument",
    "ValidationFailed",
    "accounts",
    "acting_role",
    "allowed",
    "assign_examiner",
    "attach_document",
    "audit",
    "auth",
    "bavarian",
    "case_side_by_side",
    "case_zones",
    "catalog",
    "check_document",
    "compare",
    "convert",
    "convert_by_tables",
    "criterion_words",
    "decide",
    "delete_table",
    "document_kinds",
    "export_decision_document",
    "fire",
    "format_credits",
    "format_date",
    "format_datetime",
    "format_decimal",
    "format_ects",
    "format_grade",
    "format_instant",
    "get_table",
    "has_data",
    "import_file",
    "import_transcript",
    "inconsistent",
    "institution_zone",
    "keep_notice",
    "list_tables",
    "match_by_hand",
    "media_type_of",
    "methods",
    "notice_inputs",
    "objectionable",
    "open_case",
    "outbox",
    "pending",
    "preview",
    "preview_notice",
    "procedure",
    "queries",
    "record_result_date",
    "refuse_demo_in_production",
    "reminder_kinds",
    "render_notice",
    "render_notice_html",
    "require",
    "rounding_policy",
    "say",
    "seed_demo",
    "set_student_password",
    "set_targets",
    "status_link_for_delivery",
    "sweep",
    "translations",
    "waiting_cases",
    "waiting_cohorts",
    "why_no_objection",
]
