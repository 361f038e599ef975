//! The notification WebSocket with a real client (tokio-tungstenite).

use super::support::{next_frame, send, silent_for, ws_connect};
use super::{mint, with_key};
use crate::common::TestServer;
use serde_json::json;

#[tokio::test]
async fn every_connection_of_a_user_receives_new_and_read_notifications() {
    let s = TestServer::start().await;
    send(&s, "wu", "before").await;
    let (mut tab1, hello) = ws_connect(&s, "wu", None).await;
    assert_eq!(hello["data"], json!({"user_id": "wu", "unread_count": 1}));
    let (mut tab2, _) = ws_connect(&s, "wu", None).await;
    let (mut other, _) = ws_connect(&s, "someone-else", None).await;

    let id = send(&s, "wu", "hello there").await;
    for tab in [&mut tab1, &mut tab2] {
        let f = next_frame(tab).await.unwrap();
        assert_eq!(f["event"], "notification.created", "{f}");
        assert_eq!(f["data"]["notification"]["id"], id.as_str());
        assert_eq!(f["data"]["notification"]["title"], "hello there");
        assert_eq!(f["data"]["unread_count"], 2);
    }

    s.post(&format!("/api/notifications/{id}/read"), json!({})).await;
    for tab in [&mut tab1, &mut tab2] {
        let f = next_frame(tab).await.unwrap();
        assert_eq!(f["event"], "notification.read", "{f}");
        assert_eq!(f["data"]["ids"], json!([id]));
        assert_eq!(f["data"]["unread_count"], 1);
    }
    s.post("/api/notifications/read_all", json!({"user_id": "wu"})).await;
    let f = next_frame(&mut tab1).await.unwrap();
    assert_eq!((f["event"].clone(), f["data"]["unread_count"].clone()), (json!("notification.read"), json!(0)));
    s.delete(&format!("/api/notifications/{id}")).await;
    let f = next_frame(&mut tab2).await.unwrap();
    let f = if f["event"] == "notification.read" { next_frame(&mut tab2).await.unwrap() } else { f };
    assert_eq!(f["event"], "notification.deleted", "{f}");

    assert!(silent_for(&mut other, 200).await, "another user's socket receives nothing");
}

#[tokio::test]
async fn tokens_open_only_their_own_user_socket() {
    let s = TestServer::start_with(with_key).await;
    let alice = mint(&s, "alice").await;
    let (mut ws, _) = ws_connect(&s, "alice", Some(&alice)).await;
    // Alice's token for Bob's stream: refused at the handshake with 403.
    let err = tokio_tungstenite::connect_async(s.ws_url(&format!("/ws/notifications?user_id=bob&token={alice}"))).await.unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(resp) => assert_eq!(resp.status().as_u16(), 403),
        other => panic!("expected an HTTP 403, got {other}"),
    }
    // No credentials: 401.
    let err = tokio_tungstenite::connect_async(s.ws_url("/ws/notifications?user_id=alice")).await.unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(resp) => assert_eq!(resp.status().as_u16(), 401),
        other => panic!("expected an HTTP 401, got {other}"),
    }
    // Alice's socket works.
    let r = s
        .client
        .post(s.url("/api/notifications"))
        .bearer_auth(super::ADMIN)
        .json(&json!({"type": "info", "title": "t", "user_id": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(next_frame(&mut ws).await.unwrap()["event"], "notification.created");
}

#[tokio::test]
async fn sockets_close_on_shutdown() {
    let s = TestServer::start().await;
    let (mut ws, _) = ws_connect(&s, "sd", None).await;
    let stop = tokio::spawn(s.stop());
    assert!(next_frame(&mut ws).await.is_none(), "the server closes the socket");
    stop.await.unwrap();
}

#[tokio::test]
async fn without_persistence_in_app_notifications_are_pushed_not_kept() {
    let s = TestServer::start_with(|c| c.notification.persistence.enabled = false).await;
    let (mut ws, _) = ws_connect(&s, "np", None).await;
    let id = send(&s, "np", "ephemeral").await;
    let f = next_frame(&mut ws).await.unwrap();
    assert_eq!((f["event"].clone(), f["data"]["notification"]["id"].clone()), (json!("notification.created"), json!(id)));
    let (_, list) = s.get("/api/notifications?user_id=np").await;
    assert_eq!(list, json!([]));
    let (st, _) = s.get(&format!("/api/notifications/{id}")).await;
    assert_eq!(st, 404);
}
