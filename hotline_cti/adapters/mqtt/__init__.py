"""MQTT adapter (aiomqtt): the outbox publisher and the authenticated command handler. Topics: docs/mqtt.md."""
