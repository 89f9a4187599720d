"""What happens to state over time: sessions (login, logout, expiry), pages (closing),
session and page resources, and the cleanup of what expired or ended."""
