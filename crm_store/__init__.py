"""The system of record: customers, contact points, interactions, conversations, orders, agents."""
