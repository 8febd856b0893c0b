"""Cases, shipment trackers, labels and the patients' status page."""
