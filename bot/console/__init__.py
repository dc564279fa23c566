"""The web console (DESIGN.md, "The human side"): aiohttp, server-rendered Jinja2 pages, a
little JavaScript, one WebSocket per page.  `create_app` (app.py) builds it; `serve`
(server.py) runs it alone (`waihu console`) or beside the other services (`waihu run`)."""
