"""Virtual customers: persona files and the endpoints that play them."""
