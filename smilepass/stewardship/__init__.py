"""Patient-data stewardship: export a patient's data, erase a patient, purge old scans."""
