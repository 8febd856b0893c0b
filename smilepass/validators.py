"""Form field checks shared by several features' forms."""
from flask_babel import gettext
from wtforms.validators import ValidationError


def one_line(form, field):
    """Titles are one line: a CR or LF in one would break the lists, mail subjects and CSV rows they
    are shown in."""
    if field.data and ("\n" in field.data or "\r" in field.data):
        raise ValidationError(gettext("The title must be one line."))
