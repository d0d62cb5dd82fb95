"""The words of the pages in English and German, and how a request's language is chosen."""

from __future__ import annotations

from collections.abc import Callable

from config.procedure import get_procedure
from workflow import DIFFERENCE_THRESHOLD, format_credits, format_decimal, format_grade

LANGUAGES = ("en", "de")
# The conversions' flag is a rule of workflow.grading.grades; the texts only write its number, as
# each language writes a decimal (workflow.texts: "0.3", "0,3").
_FLAG_EN = format_decimal(DIFFERENCE_THRESHOLD, "en")
_FLAG_DE = format_decimal(DIFFERENCE_THRESHOLD, "de")
# The pages' Jinja2 filters for numbers people read: ``{{ grade | grade(lang) }}`` ("1,7"),
# ``{{ ects | credits(lang) }}`` ("5,0"), ``{{ value | decimal(lang) }}``. Form values and
# ``value=""`` attributes keep the stored number with its point.
NUMBER_FILTERS = {"grade": format_grade, "credits": format_credits, "decimal": format_decimal}

# The procedure's words (its states, events, the student's next step) are the procedure's
# (config/procedure.toml); these are only the words of what is not an event of the procedure:
# the record events (opening a case, assigning an examiner, ...) and document kinds.
RECORD_EVENTS = {
    "en": {
        "open": "Case opened",
        "assign_examiner": "Examiner assigned",
        "set_targets": "Target modules set",
        "attach_document": "Document attached",
    },
    "de": {
        "open": "Fall angelegt",
        "assign_examiner": "Prüfer/in zugewiesen",
        "set_targets": "Zielmodule festgelegt",
        "attach_document": "Dokument angehängt",
    },
}

# The timeline says what happened (RECORD_EVENTS above name what one can do).
RECORD_TIMELINE = {
    "en": {
        "open": "Case opened",
        "assign_examiner": "Examiner assigned",
        "set_targets": "Target modules set",
        "attach_document": "Document attached",
    },
    "de": {
        "open": "Fall angelegt",
        "assign_examiner": "Prüfer/in zugewiesen",
        "set_targets": "Zielmodule festgelegt",
        "attach_document": "Dokument angehängt",
    },
}

CRITERIA = {
    "en": {
        "level": "Level",
        "workload": "Workload",
        "learning_outcomes": "Learning outcomes",
        "profile": "Profile",
        "quality": "Quality assurance",
    },
    "de": {
        "level": "Niveau",
        "workload": "Arbeitsaufwand",
        "learning_outcomes": "Lernergebnisse",
        "profile": "Profil",
        "quality": "Qualitätssicherung",
    },
}

DEADLINES = {
    "en": {
        "enrolment": "Enrolment",
        "result": "Partner result",
        "transcript": "Transcript",
        "retake": "Retake",
        "submission": "Request for recognition",
        "decision": "Decision",
        "info_reply": "Reply to the question",
        "appeal_window": "Objection period",
        "board_decision": "Board decision",
    },
    "de": {
        "enrolment": "Einschreibung",
        "result": "Ergebnis des Partners",
        "transcript": "Transcript",
        "retake": "Wiederholung",
        "submission": "Antrag auf Anerkennung",
        "decision": "Entscheidung",
        "info_reply": "Antwort auf die Rückfrage",
        "appeal_window": "Widerspruchsfrist",
        "board_decision": "Entscheidung des Prüfungsausschusses",
    },
}

DOCUMENT_KINDS = {
    "en": {
        "transcript": "Transcript of Records",
        "evidence": "Evidence",
        "notice": "Notice",
        "correspondence": "Correspondence",
    },
    "de": {
        "transcript": "Transcript of Records",
        "evidence": "Nachweis",
        "notice": "Bescheid",
        "correspondence": "Schriftverkehr",
    },
}

TEXT = {
    "en": {
        "app": "Recog",
        "tagline": "Recognition of achievements",
        "skip": "Skip to content",
        "login": "Sign in",
        "logout": "Sign out",
        "username": "User name",
        "password": "Password",
        "login_failed": "User name or password is wrong.",
        "login_slow": "Too many failed attempts. Try again in {seconds} seconds.",
        "cases": "Cases",
        "dashboard": "Cases",
        "filter": "Filter",
        "reset": "Reset",
        "state": "State",
        "partner": "Partner",
        "course": "Course",
        "examiner": "Examiner",
        "overdue": "Overdue",
        "overdue_only": "Overdue only",
        "any": "any",
        "student": "Student",
        "deadline": "Next deadline",
        "days_late": "{days} days late",
        "day_late": "1 day late",
        "no_cases": "No cases match these filters.",
        "counts": "Cases by state",
        "total": "Total",
        "page": "Page {page} of {pages}",
        "next": "Next",
        "prev": "Previous",
        "case": "Case",
        "timeline": "Timeline",
        "documents": "Documents",
        "no_documents": "No documents yet.",
        "actions": "What you can do now",
        "no_actions": "There is nothing for you to do in this state.",
        "decision": "Decision",
        "targets": "Target modules",
        "result": "Partner result",
        "grade": "Grade",
        "date": "Date",
        "scheme": "Grading scheme",
        "message": "Message",
        "reasons": "Reasons",
        "advice": "How recognition could still be obtained",
        "modules": "Credited modules",
        "not_credited": "Not credited",
        "converted_grade": "Converted grade",
        "suggestion": "Suggested by the modified Bavarian formula: {grade}",
        "upload": "Upload a document",
        "file": "File",
        "kind": "Kind",
        "upload_button": "Upload",
        "download": "Download",
        "send_link": "Send the student a new status link",
        "link_sent": "A new status link is on its way to the student.",
        "link_not_sent": "A status link was sent a few minutes ago; it was not sent again.",
        "revoke_links": "Revoke all status links",
        "links_revoked": "The student's status links were revoked.",
        "language": "Language",
        "switch": "Change",
        "by": "by",
        "at": "at",
        "your_cases": "Your recognition requests",
        "what_now": "What you need to do",
        "next_step": "Next deadline",
        "none": "none",
        "ects": "ECTS",
        "term": "Term",
        "credited": "Credited",
        "appeal_until": "Objection possible until {date}",
        "status_title": "Status of your request",
        "not_found": "Not found",
        "not_found_text": "This page does not exist, or you may not see it.",
        "error": "Something went wrong",
        "forbidden": "Not allowed",
        "back": "Back",
        "link_invalid": "This status link is not valid (any more). Ask the examination "
        "office for a new one.",
        "session_expired": "Please sign in.",
        "version": "Version",
        "opened": "Opened",
        "updated": "Updated",
        "assign": "Assign",
        "confirm_withdraw": "I want to withdraw this request.",
        "send_me_link": "E-mail me a new status link",
        "programme": "Programme",
        "legal": "You may object to a refusal within one month of its notice. The "
        "examination board decides on the objection.",
        "sort": "Sort",
        "no_deadline": "No deadline runs.",
        "appeal_window_over": "Nothing to do: the period for objections ended on {date}. The "
        "decision is final; the office closes the case.",
        "reason_placeholder": "Leave empty if there is "
        "no substantial difference in this criterion.",
        "decided": "Decided",
        "actor_student": "you",
        "actor_office": "examination office",
        "actor_examiner": "examiner",
        "actor_board": "examination board",
        "actor_timer": "automatic",
        "actor_import": "import",
        "actor_clerk": "office",
        "actor_admin": "office",
        "status_link": "Status link",
    },
    "de": {
        "app": "Recog",
        "tagline": "Anerkennung von Leistungen",
        "skip": "Zum Inhalt springen",
        "login": "Anmelden",
        "logout": "Abmelden",
        "username": "Benutzername",
        "password": "Passwort",
        "login_failed": "Benutzername oder Passwort ist falsch.",
        "login_slow": "Zu viele Fehlversuche. Bitte in {seconds} Sekunden erneut versuchen.",
        "cases": "Fälle",
        "dashboard": "Fälle",
        "filter": "Filtern",
        "reset": "Zurücksetzen",
        "state": "Status",
        "partner": "Partner",
        "course": "Kurs",
        "examiner": "Prüfer/in",
        "overdue": "Überfällig",
        "overdue_only": "Nur überfällige",
        "any": "alle",
        "student": "Studierende/r",
        "deadline": "Nächste Frist",
        "days_late": "{days} Tage überfällig",
        "day_late": "1 Tag überfällig",
        "no_cases": "Keine Fälle zu diesen Filtern.",
        "counts": "Fälle nach Status",
        "total": "Gesamt",
        "page": "Seite {page} von {pages}",
        "next": "Weiter",
        "prev": "Zurück",
        "case": "Fall",
        "timeline": "Verlauf",
        "documents": "Dokumente",
        "no_documents": "Noch keine Dokumente.",
        "actions": "Was Sie jetzt tun können",
        "no_actions": "In diesem Status ist für Sie nichts zu tun.",
        "decision": "Entscheidung",
        "targets": "Zielmodule",
        "result": "Ergebnis des Partners",
        "grade": "Note",
        "date": "Datum",
        "scheme": "Notensystem",
        "message": "Nachricht",
        "reasons": "Begründung",
        "advice": "Wie die Anerkennung noch erreicht werden kann",
        "modules": "Angerechnete Module",
        "not_credited": "Nicht angerechnet",
        "converted_grade": "Umgerechnete Note",
        "suggestion": "Vorschlag nach der modifizierten bayerischen Formel: {grade}",
        "upload": "Dokument hochladen",
        "file": "Datei",
        "kind": "Art",
        "upload_button": "Hochladen",
        "download": "Herunterladen",
        "send_link": "Neuen Status-Link an die/den Studierende/n senden",
        "link_sent": "Ein neuer Status-Link ist unterwegs.",
        "link_not_sent": "Vor wenigen Minuten wurde schon ein Status-Link gesendet; er wurde "
        "nicht erneut gesendet.",
        "revoke_links": "Alle Status-Links sperren",
        "links_revoked": "Die Status-Links wurden gesperrt.",
        "language": "Sprache",
        "switch": "Wechseln",
        "by": "bis",
        "at": "am",
        "your_cases": "Ihre Anerkennungsanträge",
        "what_now": "Was Sie tun müssen",
        "next_step": "Nächste Frist",
        "none": "keine",
        "ects": "ECTS",
        "term": "Semester",
        "credited": "Angerechnet",
        "appeal_until": "Widerspruch möglich bis {date}",
        "status_title": "Stand Ihres Antrags",
        "not_found": "Nicht gefunden",
        "not_found_text": "Diese Seite gibt es nicht, oder Sie dürfen sie nicht sehen.",
        "error": "Etwas ist schiefgegangen",
        "forbidden": "Nicht erlaubt",
        "back": "Zurück",
        "link_invalid": "Dieser Status-Link ist nicht (mehr) gültig. Bitten Sie das "
        "Prüfungsamt um einen neuen.",
        "session_expired": "Bitte melden Sie sich an.",
        "version": "Version",
        "opened": "Angelegt",
        "updated": "Geändert",
        "assign": "Zuweisen",
        "confirm_withdraw": "Ich möchte diesen Antrag zurückziehen.",
        "send_me_link": "Neuen Status-Link per E-Mail senden",
        "programme": "Studiengang",
        "legal": "Gegen eine Ablehnung können Sie innerhalb eines Monats nach Bekanntgabe "
        "Widerspruch einlegen. Über den Widerspruch entscheidet der Prüfungsausschuss.",
        "sort": "Sortieren",
        "no_deadline": "Es läuft keine Frist.",
        "appeal_window_over": "Nichts zu tun: Die Widerspruchsfrist ist am {date} abgelaufen. "
        "Die Entscheidung ist bestandskräftig; das Prüfungsamt schließt den Fall ab.",
        "reason_placeholder": "Leer lassen, wenn es in diesem Kriterium keinen wesentlichen "
        "Unterschied gibt.",
        "decided": "Entschieden",
        "actor_student": "Sie",
        "actor_office": "Prüfungsamt",
        "actor_examiner": "Prüfer/in",
        "actor_board": "Prüfungsausschuss",
        "actor_timer": "automatisch",
        "actor_import": "Import",
        "actor_clerk": "Prüfungsamt",
        "actor_admin": "Prüfungsamt",
        "status_link": "Status-Link",
    },
}

# The office's recognition work: transcripts, conversions, precedents, cohorts, export.
RECOGNITION = {
    "en": {
        "nav": "Sections",
        "nav_cases": "Cases",
        "nav_transcripts": "Transcripts",
        "transcripts_title": "Transcripts of records",
        "upload_transcript": "Import a transcript",
        "transcript_hint": "ELMO 1.7, ELMO 2.0 or an EWP transcript-of-records response "
        "(XML, at most {mb} MB). Each result lands on its case; a result that matches no "
        "case, or several, waits below for you. A faulty file is refused as a whole.",
        "import_button": "Import",
        "report_title": "Import report: {file}",
        "report_counts": "{matched} matched · {waiting} waiting · {resolved} matched by hand",
        "report_again": "This file had been imported before; nothing new was imported.",
        "r_matched": "matched",
        "r_unmatched": "no case found",
        "r_ambiguous": "several cases",
        "r_resolved": "matched by hand",
        "r_skipped": "already imported",
        "pending_title": "Results waiting for you",
        "no_pending": "No result is waiting.",
        "learner": "Learner (as in the file)",
        "line": "Line",
        "note": "Note",
        "match_to": "Case number",
        "match_button": "Apply to this case",
        "candidates": "Cases waiting for this course's result",
        "matched_notice": "The result was applied to case #{case}.",
        "born": "born {date}",
        "imported": "Imported",
        "precedents": "Precedents",
        "no_precedents": "No earlier decision for this partner course and these target modules.",
        "o_credited": "credited",
        "o_not_credited": "not credited",
        "expired_precedents": "Expired: no longer a precedent",
        "why_aged": "older than the validity period",
        "why_regulations": "the regulations changed to {version}",
        "suggestion_precedent": "Suggested by the precedents",
        "as_in_case": "as in case #{case} of {date}",
        "regulations": "Regulations",
        "conversions": "Grade conversion",
        "partner_grade": "Partner grade",
        "method": "Method",
        "m_bavarian": "Modified Bavarian formula",
        "m_percentile": "Percentile (ECTS grading tables)",
        "m_passfail": "Pass/fail",
        "how": "How",
        "rounding_nearest": "nearest German step, ties to the better grade",
        "rounding_truncate": "truncated to one decimal",
        "band": "band {lower} to {upper} %, midpoint {mid} %",
        "percentile_needs_table": "Not available: the percentile conversion needs the "
        "partner's ECTS grading table for this course (and the office's own grade "
        "distribution). It arrives with the partner's EWP transcript, or the office imports "
        "it (recog grade table import).",
        "largest_overlap": "largest overlap: {grade}",
        "table_partner": "Partner table",
        "table_home": "Home distribution",
        "source_ewp": "EWP transcript",
        "source_result_distribution": "course distribution (ELMO)",
        "source_manual": "entered by the office",
        "group_isced": "ISCED-F",
        "group_offering": "course",
        "group_module": "module",
        "group_programme": "programme",
        "group_all": "whole institution",
        "choose_method": "Conversion used for the decision",
        "grade_of_method": "the grade of the chosen conversion",
        "grade_of_method_hint": "Keep “the grade of the chosen conversion”, or choose another "
        "grade; the conversion is stored with the decision either way.",
        "conversions_differ": "The two methods differ by {difference}: look at both before "
        "you choose.",
        "conversions_agree": f"Both methods agree within {_FLAG_EN}.",
        "not_convertible": "Cannot be converted: {reason}",
        "choose_grade": "Converted grade (your choice)",
        "prefilled": "Pre-filled with the result of the modified Bavarian formula.",
        "cohorts": "Cohorts waiting for your decision",
        "cohort_offer": "{n} cases of this course offering with the target module {module} "
        "wait for your decision.",
        "cohort_decide_all": "Decide all {n} waiting cases",
        "cohort_title": "Cohort decision",
        "cohort_intro": "One decision for each case below, with its own audit event and "
        "notice. All or none: if one case cannot be decided, none is.",
        "cohort_own_grade": "each student's own converted grade",
        "cohort_grade_for_all": "Grade",
        "cohort_confirm": "I have checked the {n} cases listed above.",
        "cohort_button_recognize": "Recognise all {n} cases",
        "cohort_button_reject": "Reject all {n} cases",
        "cohort_done": "{n} cases were decided.",
        "cohort_none": "No case of this course offering with this target module waits for "
        "your decision.",
        "cohort_blocked": "Case #{case} cannot be decided with its own "
        "grade: {reason} Give one grade for all, or decide that case on its own.",
        "cohort_changed": "The waiting cases changed since you looked; check the list again.",
        "cohort_method": "Grade conversion for every case of the cohort",
        "cohort_method_hint": "Each student's grade is converted by the chosen method, and "
        "the conversion is stored with each decision.",
        "cohort_not_available": "not available",
        "cohort_percentile_unavailable": "The percentile conversion is not available for "
        "this cohort: it cannot convert case(s) {cases} (see the list above). Decide by the "
        "modified Bavarian formula, or decide those cases on their own.",
        "cohort_differing": f"For {{n}} case(s) the two methods differ by {_FLAG_EN} or more: "
        "look at "
        "both before you choose.",
        "cohort_differs": "differs by {difference}",
        "cohort_band": "(band {lower} to {upper} %)",
        "cohort_missing_partner": "not available: no partner grading table",
        "cohort_missing_home": "not available: no home grade distribution",
        "cohort_missing_both": "not available: no grading tables",
        "cohort_tables_used": "The percentile conversions use these grading tables:",
        "waiting": "waiting",
        "with_grade": "with {grade}",
        "module": "Module",
        "export": "Export",
        "export_elmo": "Decision as ELMO 2.0 (XML)",
        "inconsistent_title": "Precedents decided differently",
        "inconsistent_hint": "Valid precedents decided these pairs of partner course and home "
        "module differently. Check whether that was intended.",
    },
    "de": {
        "nav": "Bereiche",
        "nav_cases": "Fälle",
        "nav_transcripts": "Transcripts",
        "transcripts_title": "Transcripts of Records",
        "upload_transcript": "Transcript importieren",
        "transcript_hint": "ELMO 1.7, ELMO 2.0 oder eine EWP-Transcript-of-Records-Antwort "
        "(XML, höchstens {mb} MB). Jedes Ergebnis landet bei seinem Fall; ein Ergebnis, das "
        "zu keinem oder zu mehreren Fällen passt, wartet unten auf Sie. Eine fehlerhafte "
        "Datei wird als Ganzes abgewiesen.",
        "import_button": "Importieren",
        "report_title": "Importbericht: {file}",
        "report_counts": "{matched} zugeordnet · {waiting} wartend · {resolved} von Hand "
        "zugeordnet",
        "report_again": "Diese Datei war schon importiert; es wurde nichts Neues importiert.",
        "r_matched": "zugeordnet",
        "r_unmatched": "kein Fall gefunden",
        "r_ambiguous": "mehrere Fälle",
        "r_resolved": "von Hand zugeordnet",
        "r_skipped": "bereits importiert",
        "pending_title": "Ergebnisse, die auf Sie warten",
        "no_pending": "Kein Ergebnis wartet.",
        "learner": "Studierende/r (laut Datei)",
        "line": "Zeile",
        "note": "Hinweis",
        "match_to": "Fallnummer",
        "match_button": "Diesem Fall zuordnen",
        "candidates": "Fälle, die auf ein Ergebnis dieses Kurses warten",
        "matched_notice": "Das Ergebnis wurde Fall #{case} zugeordnet.",
        "born": "geb. {date}",
        "imported": "Importiert",
        "precedents": "Präzedenzfälle",
        "no_precedents": "Keine frühere Entscheidung zu diesem Partnerkurs und diesen Zielmodulen.",
        "o_credited": "angerechnet",
        "o_not_credited": "nicht angerechnet",
        "expired_precedents": "Abgelaufen: kein Präzedenzfall mehr",
        "why_aged": "älter als die Geltungsdauer",
        "why_regulations": "die Prüfungsordnung wurde zu {version} geändert",
        "suggestion_precedent": "Vorschlag aus den Präzedenzfällen",
        "as_in_case": "wie in Fall #{case} vom {date}",
        "regulations": "Prüfungsordnung",
        "conversions": "Notenumrechnung",
        "partner_grade": "Note des Partners",
        "method": "Verfahren",
        "m_bavarian": "Modifizierte bayerische Formel",
        "m_percentile": "Prozentrangverfahren (ECTS-Notenverteilungstabellen)",
        "m_passfail": "Bestanden/nicht bestanden",
        "how": "Rechenweg",
        "rounding_nearest": "nächste deutsche Notenstufe, bei Gleichstand die bessere",
        "rounding_truncate": "auf eine Nachkommastelle abgeschnitten",
        "band": "Band {lower} bis {upper} %, Mitte {mid} %",
        "percentile_needs_table": "Nicht verfügbar: Das Prozentrangverfahren braucht die "
        "ECTS-Notenverteilungstabelle des Partners für diesen Kurs (und die eigene "
        "Notenverteilung des Prüfungsamts). Sie kommt mit dem EWP-Transcript des Partners, "
        "oder das Prüfungsamt importiert sie (recog grade table import).",
        "largest_overlap": "größte Überschneidung: {grade}",
        "table_partner": "Tabelle des Partners",
        "table_home": "Eigene Notenverteilung",
        "source_ewp": "EWP-Transcript",
        "source_result_distribution": "Kursverteilung (ELMO)",
        "source_manual": "vom Prüfungsamt eingegeben",
        "group_isced": "ISCED-F",
        "group_offering": "Kurs",
        "group_module": "Modul",
        "group_programme": "Studiengang",
        "group_all": "gesamte Hochschule",
        "choose_method": "Umrechnung für die Entscheidung",
        "grade_of_method": "die Note der gewählten Umrechnung",
        "grade_of_method_hint": "Behalten Sie „die Note der gewählten Umrechnung“ oder wählen "
        "Sie eine andere Note; die Umrechnung wird in jedem Fall mit der Entscheidung "
        "gespeichert.",
        "conversions_differ": "Die beiden Verfahren weichen um {difference} voneinander ab: "
        "bitte beide ansehen, bevor Sie wählen.",
        "conversions_agree": f"Beide Verfahren liegen weniger als {_FLAG_DE} auseinander.",
        "not_convertible": "Nicht umrechenbar: {reason}",
        "choose_grade": "Umgerechnete Note (Ihre Wahl)",
        "prefilled": "Vorausgefüllt mit dem Ergebnis der modifizierten bayerischen Formel.",
        "cohorts": "Kohorten, die auf Ihre Entscheidung warten",
        "cohort_offer": "{n} Fälle dieses Kursangebots mit dem Zielmodul {module} warten auf "
        "Ihre Entscheidung.",
        "cohort_decide_all": "Alle {n} wartenden Fälle entscheiden",
        "cohort_title": "Kohortenentscheidung",
        "cohort_intro": "Eine Entscheidung für jeden der Fälle unten, jeweils mit eigenem "
        "Eintrag im Verlauf und eigenem Bescheid. Alle oder keiner: Kann ein Fall nicht "
        "entschieden werden, wird keiner entschieden.",
        "cohort_own_grade": "die eigene umgerechnete Note jeder/jedes Studierenden",
        "cohort_grade_for_all": "Note",
        "cohort_confirm": "Ich habe die {n} oben aufgeführten Fälle geprüft.",
        "cohort_button_recognize": "Alle {n} Fälle anerkennen",
        "cohort_button_reject": "Alle {n} Fälle ablehnen",
        "cohort_done": "{n} Fälle wurden entschieden.",
        "cohort_none": "Kein Fall dieses Kursangebots mit diesem Zielmodul wartet auf Ihre "
        "Entscheidung.",
        "cohort_blocked": "Fall #{case} kann nicht mit der eigenen Note "
        "entschieden werden: {reason} Geben Sie eine Note für alle an oder entscheiden Sie "
        "diesen Fall einzeln.",
        "cohort_changed": "Die wartenden Fälle haben sich geändert; bitte prüfen Sie die "
        "Liste erneut.",
        "waiting": "wartend",
        "with_grade": "mit {grade}",
        "module": "Modul",
        "cohort_method": "Notenumrechnung für alle Fälle der Kohorte",
        "cohort_method_hint": "Die Note jedes/jeder Studierenden wird mit dem gewählten "
        "Verfahren umgerechnet; die Umrechnung wird mit jeder Entscheidung gespeichert.",
        "cohort_not_available": "nicht verfügbar",
        "cohort_percentile_unavailable": "Das Prozentrangverfahren ist für diese Kohorte nicht "
        "verfügbar: Es kann Fall/Fälle {cases} nicht umrechnen (siehe Liste oben). "
        "Entscheiden Sie mit der modifizierten bayerischen Formel oder entscheiden Sie diese "
        "Fälle einzeln.",
        "cohort_differing": f"Bei {{n}} Fall/Fällen weichen die beiden Verfahren um {_FLAG_DE} "
        "oder mehr voneinander ab: bitte beide ansehen, bevor Sie wählen.",
        "cohort_differs": "Abweichung {difference}",
        "cohort_band": "(Band {lower} bis {upper} %)",
        "cohort_missing_partner": "nicht verfügbar: keine Tabelle des Partners",
        "cohort_missing_home": "nicht verfügbar: keine eigene Notenverteilung",
        "cohort_missing_both": "nicht verfügbar: keine Notenverteilungstabellen",
        "cohort_tables_used": "Das Prozentrangverfahren nutzt diese Notenverteilungstabellen:",
        "export": "Export",
        "export_elmo": "Entscheidung als ELMO 2.0 (XML)",
        "inconsistent_title": "Unterschiedlich entschiedene Präzedenzfälle",
        "inconsistent_hint": "Gültige Präzedenzfälle haben diese Paare aus Partnerkurs und "
        "Heimatmodul unterschiedlich entschieden. Prüfen Sie, ob das so gewollt war.",
    },
}
for _lang in LANGUAGES:
    TEXT[_lang].update(RECOGNITION[_lang])

# A student's own sign-in password (where the institution enables it).
ACCOUNT = {
    "en": {
        "account_title": "Your sign-in password",
        "account_link": "Sign-in password",
        "account_login_name": "Your user name for signing in",
        "account_intro": "Your university lets you sign in with a password as well as with "
        "the link in your e-mails. If you forget the password, open the link in your latest "
        "e-mail and set a new one here.",
        "account_disabled": "Your university does not offer passwords for students. Use the "
        "link in your e-mails; you can have a new one sent at any time.",
        "account_has_password": "You have set a password. A new one replaces it and signs you "
        "out everywhere else.",
        "new_password": "New password (at least 12 characters)",
        "repeat_password": "Repeat the new password",
        "set_password": "Set the password",
        "password_saved": "Your password is set. Sign in with your user name and this password.",
        "password_mismatch": "The two passwords differ.",
        "password_short": "The password needs at least 12 characters.",
        "login_student_hint": "Students: open the link in your e-mail. If your university "
        "allows passwords, your user name is your matriculation number, @, and your "
        "university's code, e.g. 123456@uni-example.de.",
    },
    "de": {
        "account_title": "Ihr Anmeldepasswort",
        "account_link": "Anmeldepasswort",
        "account_login_name": "Ihr Benutzername für die Anmeldung",
        "account_intro": "Ihre Hochschule erlaubt die Anmeldung mit Passwort neben dem Link in "
        "Ihren E-Mails. Wenn Sie das Passwort vergessen, öffnen Sie den Link aus Ihrer letzten "
        "E-Mail und setzen hier ein neues.",
        "account_disabled": "Ihre Hochschule bietet Studierenden keine Passwörter an. Nutzen "
        "Sie den Link in Ihren E-Mails; einen neuen können Sie jederzeit anfordern.",
        "account_has_password": "Sie haben ein Passwort gesetzt. Ein neues ersetzt es und "
        "meldet Sie überall sonst ab.",
        "new_password": "Neues Passwort (mindestens 12 Zeichen)",
        "repeat_password": "Neues Passwort wiederholen",
        "set_password": "Passwort setzen",
        "password_saved": "Ihr Passwort ist gesetzt. Melden Sie sich mit Ihrem Benutzernamen "
        "und diesem Passwort an.",
        "password_mismatch": "Die beiden Passwörter stimmen nicht überein.",
        "password_short": "Das Passwort braucht mindestens 12 Zeichen.",
        "login_student_hint": "Studierende: Öffnen Sie den Link in Ihrer E-Mail. Erlaubt Ihre "
        "Hochschule Passwörter, ist Ihr Benutzername Ihre Matrikelnummer, @ und das Kürzel "
        "der Hochschule, z. B. 123456@uni-beispiel.de.",
    },
}
for _lang in LANGUAGES:
    TEXT[_lang].update(ACCOUNT[_lang])


def pick_language(*, cookie: str | None, preferred: str | None, accept_language: str | None) -> str:
    """An explicit choice (cookie) wins, then the account's setting, then the browser."""
    for choice in (cookie, preferred):
        if choice in LANGUAGES:
            return choice
    best, best_q = "en", -1.0
    for part in (accept_language or "").split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        base = tag.strip().lower()[:2]
        if base in LANGUAGES and q > best_q:
            best, best_q = base, q
    return best


def translator(language: str) -> Callable[..., str]:
    table = TEXT.get(language, TEXT["en"])

    def t(key: str, **values: object) -> str:
        text = table.get(key) or TEXT["en"].get(key) or key
        return text.format(**values) if values else text

    return t


def states(language: str) -> dict[str, str]:
    """The label of every state of the procedure in ``language``."""
    return {name: st.labels[language] for name, st in get_procedure().states.items()}


def student_todo(language: str) -> dict[str, str]:
    """What the student should do now, by state."""
    return {name: st.todo[language] for name, st in get_procedure().states.items()}


def events(language: str) -> dict[str, str]:
    """What one can do: the procedure's events (their action) and the record events."""
    proc = get_procedure()
    return {**RECORD_EVENTS[language], **{n: e.labels[language] for n, e in proc.events.items()}}


def timeline(language: str) -> dict[str, str]:
    """What happened: the procedure's events (as done) and the record events."""
    proc = get_procedure()
    return {**RECORD_TIMELINE[language], **{n: e.done[language] for n, e in proc.events.items()}}
