"""The whole jada-agent stack on one machine: building blocks for the demo and the end-to-end test."""
