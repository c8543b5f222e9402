"""Post-landing: descent reconstruction and landing-site localisation on an orbital map (``selenite locate``)."""
