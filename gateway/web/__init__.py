"""The public river page, the staff page behind a login, and the HTTP server serving them."""
