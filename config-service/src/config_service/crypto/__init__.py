"""``{cipher}`` values: encrypt, decrypt, key status."""
