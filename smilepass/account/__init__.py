"""My Account: the signed-in user's own choices (email notifications, language) and their inbox."""
