"""featurestore: define features once, train point-in-time correct, serve online, govern it all."""
