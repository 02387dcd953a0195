"""The browser side (agent console, supervisor dashboard, customer widget), served by the hub."""
