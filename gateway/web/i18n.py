"""Words on the pages, in Japanese (the default) and English."""

from __future__ import annotations

LANGS = ("ja", "en")

TEXT: dict[str, dict[str, str]] = {
    "ja": {
        "title": "川の水位",
        "subtitle": "市内の河川水位観測所の現在の状況",
        "switch": "English",
        "updated": "更新",
        "offline": "最新の情報を取得できません。表示は {time} 時点のものです。",
        "observed": "最終観測",
        "no_reading": "観測データなし",
        "trend_rising": "上昇",
        "trend_falling": "下降",
        "trend_steady": "横ばい",
        "per_hour": "m/時",
        "chart_24h": "24時間",
        "chart_7d": "7日間",
        "chart_label": "{site}の水位 ({window})",
        "levels": "基準水位",
        "overview": "すべての観測所（危険な順）",
        "sightings_title": "クマなどの出没情報",
        "sightings_subtitle": "市のカメラが確認した危険な動物",
        "sightings_map": "出没した場所の地図",
        "sightings_note": (
            "場所は約{grid}m四方の区画の中心で示しています。写真は公開していません。"
            "見かけたら近づかず、市に連絡してください。"
        ),
        "no_sightings": "この{days}日間、出没の確認はありません。",
        "sightings_link": "クマなどの出没情報",
        "map": "観測所の地図",
        "short_standby": "待機",
        "short_caution": "注意",
        "short_evacuation": "避難判断",
        "short_danger": "危険",
        "sites": "観測所",
        "missing_code": "欠測コード",
        "crossing_rising": "{site}: {level}を超えました（{value}）",
        "crossing_falling": "{site}: {level}を下回りました（{value}）",
        "state_normal": "平常",
        "state_standby": "水防団待機水位",
        "state_caution": "氾濫注意水位",
        "state_evacuation": "避難判断水位",
        "state_danger": "氾濫危険水位",
        "state_missing": "欠測",
        "advice_normal": "通常の水位です。",
        "advice_standby": "水防団が待機する水位に達しています。今後の情報に注意してください。",
        "advice_caution": "氾濫注意水位に達しています。川に近づかず、避難の準備をしてください。",
        "advice_evacuation": (
            "避難判断水位に達しています。高齢者など避難に時間のかかる方は避難を始めてください。"
        ),
        "advice_danger": (
            "氾濫危険水位に達しています。いつ氾濫してもおかしくありません。"
            "直ちに安全な場所へ避難してください。"
        ),
        "missing_stale": "{minutes}分以上、観測データが届いていません。",
        "missing_no_data": "まだ観測データがありません。",
        "missing_reported": "観測できていません。",
        "missing_advice": "この観測所の水位は表示できません。市の防災情報にも注意してください。",
        "footer": "データは観測所から自動で送られた速報値です。避難は市の発表に従ってください。",
        "api": "オープンデータ (API の説明)",
        "licence": "データの利用条件:",
        "staff": "職員用",
        "staff_title": "職員ページ",
        "login": "ログイン",
        "logout": "ログアウト",
        "user": "ユーザー名",
        "password": "パスワード",
        "login_failed": "ユーザー名またはパスワードが違います。",
        "login_throttled": "失敗が続いたため、しばらくログインできません。",
        "events": "最近のイベント（警報・動物検知など）",
        "time": "時刻",
        "device": "機器",
        "type": "種類",
        "details": "内容",
        "image": "画像",
        "harmful": "危険な動物",
        "no_events": "イベントはありません。",
        "devices": "機器の状態",
        "state": "状態",
        "last_seen": "最終受信",
        "received": "受信",
        "lost": "欠損",
        "duplicates": "重複",
        "rejections": "受け付けなかったメッセージ",
        "reason": "理由",
        "count": "件数",
        "none": "なし",
    },
    "en": {
        "title": "River levels",
        "subtitle": "Current state of the city's river gauges",
        "switch": "日本語",
        "updated": "Updated",
        "offline": "Cannot get new data. Showing the state at {time}.",
        "observed": "Last reading",
        "no_reading": "No readings",
        "trend_rising": "rising",
        "trend_falling": "falling",
        "trend_steady": "steady",
        "per_hour": "m/h",
        "chart_24h": "24 hours",
        "chart_7d": "7 days",
        "chart_label": "Water level at {site} ({window})",
        "levels": "Warning levels",
        "overview": "All gauges (most serious first)",
        "sightings_title": "Bear and wildlife sightings",
        "sightings_subtitle": "Harmful animals seen by the city's cameras",
        "sightings_map": "Map of the sightings",
        "sightings_note": (
            "Places are shown as the centre of a square of about {grid} m. No photos are "
            "published. If you see one, keep away and call the city."
        ),
        "no_sightings": "No sightings in the last {days} days.",
        "sightings_link": "Bear and wildlife sightings",
        "map": "Map of the gauges",
        "short_standby": "standby",
        "short_caution": "caution",
        "short_evacuation": "evacuate",
        "short_danger": "danger",
        "sites": "Gauges",
        "missing_code": "欠測 code",
        "crossing_rising": "{site}: rose above the {level} ({value})",
        "crossing_falling": "{site}: fell below the {level} ({value})",
        "state_normal": "Normal",
        "state_standby": "Standby level",
        "state_caution": "Flood caution level",
        "state_evacuation": "Evacuation level",
        "state_danger": "Flood danger level",
        "state_missing": "No data (欠測)",
        "advice_normal": "The water is at a normal level.",
        "advice_standby": "Flood-fighting teams are on standby. Keep following the news.",
        "advice_caution": (
            "Flood caution level reached. Stay away from the river; get ready to leave."
        ),
        "advice_evacuation": (
            "Evacuation level reached. Older people and anyone who needs time should leave now."
        ),
        "advice_danger": (
            "Flood danger level reached. The river may overflow at any moment. "
            "Go to a safe place now."
        ),
        "missing_stale": "No reading has arrived for over {minutes} minutes.",
        "missing_no_data": "No readings yet.",
        "missing_reported": "The gauge cannot measure the water right now.",
        "missing_advice": "This gauge's level cannot be shown. Follow the city's announcements.",
        "footer": (
            "Preliminary values sent automatically by the gauges. "
            "Follow the city's evacuation orders."
        ),
        "api": "Open data (API documentation)",
        "licence": "Data licence:",
        "staff": "Staff",
        "staff_title": "Staff page",
        "login": "Log in",
        "logout": "Log out",
        "user": "User name",
        "password": "Password",
        "login_failed": "Wrong user name or password.",
        "login_throttled": "Too many failed attempts; try again later.",
        "events": "Recent events (alerts, animal detections, ...)",
        "time": "Time",
        "device": "Device",
        "type": "Type",
        "details": "Details",
        "image": "Image",
        "harmful": "harmful animal",
        "no_events": "No events.",
        "devices": "Devices",
        "state": "State",
        "last_seen": "Last heard",
        "received": "Received",
        "lost": "Lost",
        "duplicates": "Duplicates",
        "rejections": "Rejected messages",
        "reason": "Reason",
        "count": "Count",
        "none": "None",
    },
}


def lang_of(value: str | None) -> str:
    return value if value in LANGS else "ja"


def t(lang: str, key: str, **values: object) -> str:
    text = TEXT[lang][key]
    return text.format(**values) if values else text
