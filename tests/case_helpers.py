"""Helpers shared by the case, shipment and patient-page tests (no tests here)."""
import datetime as dt
import re

from smilepass import db
from smilepass.cases import shipments
from smilepass.models import Case, Shipment, User

ADA = "dr.ada@clinic.test"
BOB = "dr.bob@clinic.test"
SAM = "sam@smilepass.test"
ROOT = "root@smilepass.test"
TOKEN_URL = re.compile(r'value="(http://localhost/p/[A-Za-z0-9_-]+)"')


def in_db(fn):
    with db.database.connection_context():
        return fn()


def user(email) -> User:
    return in_db(lambda: User.by_email(email))


def make_case(owner_email=ADA, number="C-1001", patient_name="Jane Roe", dob=dt.date(1990, 4, 2), **extra) -> Case:
    owner = user(owner_email)
    return in_db(lambda: Case.create(case_number=number, patient_name=patient_name, patient_dob=dob,
                                     clinician=owner.id, **extra))


def make_shipment(case, phases="Aligners 1–12", target=dt.date(2026, 11, 20), actor_email=SAM) -> Shipment:
    return in_db(lambda: shipments.create_shipment(case, user(actor_email), phases, target))


def reload(model, obj_id):
    return in_db(lambda: model.get_by_id(obj_id))
