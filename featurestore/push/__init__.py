"""Push ingestion: rows sent at run time to the online store, the offline store, or both."""

from featurestore.push.frame import PushInput
from featurestore.push.online_write import OnlineWriteReport
from featurestore.push.pusher import Pusher, PushMode, PushReport, ViewPush

__all__ = ["OnlineWriteReport", "PushInput", "PushMode", "PushReport", "Pusher", "ViewPush"]
