"""Admin screens: users, the mail outbox (where reset links wait when there is no SMTP server) and
the audit log."""
from functools import wraps

from flask import abort, flash, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, ValidationError

from .. import audit
from ..auth.forms import looks_like_email
from ..htmx import see_other
from ..models import AuditLog, OutboxMail, Role, User
from ..security import password_problem
from ..users import UserExists, create_user
from . import bp

PAGE = 50


def admin_required(view):
    @wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        if not current_user.is_admin:
            abort(404)
        return view(*args, **kwargs)

    return wrapper


class NewUserForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), looks_like_email, Length(max=254)])
    name = StringField("Name", validators=[Length(max=120)])
    role = SelectField("Role", choices=[SelectChoice(r.value, r.value.capitalize()) for r in Role])
    password = PasswordField("Temporary password", validators=[DataRequired()])

    def validate_password(self, field):
        problem = password_problem(field.data or "", self.email.data or "")
        if problem:
            raise ValidationError(problem)


class ToggleForm(FlaskForm):
    pass


@bp.route("/users", methods=["GET", "POST"])
@admin_required
def users():
    form = NewUserForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = create_user(form.email.data, form.password.data, form.role.data, form.name.data)
        except UserExists as exc:
            form.email.errors.append(str(exc))
        else:
            audit.record("user_created", user, detail=f"role={user.role}")
            flash(f"{user.email} can now sign in.", "info")
            return see_other(url_for("admin.users"))
    if request.method == "POST":
        status = 422
    people = User.select().order_by(User.role, User.email)
    return render_template("admin/users.html", form=form, people=people, toggle=ToggleForm()), status


@bp.post("/users/<int:user_id>/active")
@admin_required
def toggle_active(user_id: int):
    ToggleForm().validate_on_submit()
    user = User.get_or_none(User.id == user_id)
    if user is None:
        abort(404)
    if user.id == current_user.id:
        flash("You cannot deactivate your own account.", "error")
    else:
        user.is_active = not user.is_active
        user.save()
        audit.record("user_activated" if user.is_active else "user_deactivated", user)
    return see_other(url_for("admin.users"))


@bp.get("/outbox")
@admin_required
def outbox():
    mails = OutboxMail.select().order_by(OutboxMail.id.desc()).limit(PAGE)
    return render_template("admin/outbox.html", mails=mails)


@bp.get("/audit")
@admin_required
def audit_log():
    query = AuditLog.select().order_by(AuditLog.id.desc())
    action = request.args.get("action", "").strip()
    if action:
        query = query.where(AuditLog.action == action)
    before = request.args.get("before", "")
    if before.isdigit():
        query = query.where(AuditLog.id < int(before))
    rows = list(query.limit(PAGE))
    return render_template("admin/audit.html", rows=rows, action=action, page_size=PAGE)
