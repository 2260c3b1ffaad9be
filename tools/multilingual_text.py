"""Hand-written text in several languages, for the calibration and evaluation sets of static int8.

Six subjects per language, three sentences each, and how a user asks about a subject (query
templates, split into the ones calibration uses and the ones only the evaluation set uses). The
English material is tools/synthetic_data.py's SUBJECTS. Written for this project: nothing
here is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from tools.synthetic_data import Subject


@dataclass(frozen=True)
class Language:
    code: str
    subjects: tuple[Subject, ...]
    calibration_queries: tuple[str, ...]  # templates with {name}
    evaluation_queries: tuple[str, ...]  # never used for calibration
    joiner: str = " "  # between sentences ("" for Chinese and Japanese)


LANGUAGES: tuple[Language, ...] = (
    Language(
        "de",
        (
            Subject(
                "den Großen Panda",
                (
                    "Der Große Panda ist eine Bärenart, die nur in China vorkommt.",
                    "Pandas fressen fast den ganzen Tag Bambus.",
                    "Ein neugeborenes Pandajunges wiegt etwa hundert Gramm.",
                ),
            ),
            Subject(
                "den Eiffelturm",
                (
                    "Der Eiffelturm ist ein Turm aus Schmiedeeisen in Paris.",
                    "Er wurde für die Weltausstellung von 1889 gebaut.",
                    "Jedes Jahr steigen Millionen Besucher auf den Eiffelturm.",
                ),
            ),
            Subject(
                "den Mond",
                (
                    "Der Mond ist der einzige natürliche Satellit der Erde.",
                    "Die Anziehungskraft des Mondes verursacht Ebbe und Flut.",
                    "Im Jahr 1969 betraten die ersten Menschen den Mond.",
                ),
            ),
            Subject(
                "Kaffee",
                (
                    "Kaffee wird aus gerösteten Kaffeebohnen gebrüht.",
                    "Das Koffein im Kaffee hält viele Menschen morgens wach.",
                    "Brasilien baut mehr Kaffee an als jedes andere Land.",
                ),
            ),
            Subject(
                "Vulkane",
                (
                    "Ein Vulkan ist eine Öffnung in der Erdkruste, aus der Lava austritt.",
                    "Bei einem Ausbruch schleudert der Vulkan Asche und Gas in die Luft.",
                    "Der Ätna gehört zu den aktivsten Vulkanen Europas.",
                ),
            ),
            Subject(
                "das Internet",
                (
                    "Das Internet verbindet Milliarden von Rechnern auf der ganzen Welt.",
                    "Webseiten werden über das Protokoll HTTP übertragen.",
                    "Suchmaschinen ordnen Dokumente nach ihrer Relevanz für eine Anfrage.",
                ),
            ),
        ),
        ("was ist {name}?", "erzähl mir etwas über {name}", "Fakten über {name}"),
        ("was weißt du über {name}?", "erkläre {name}"),
    ),
    Language(
        "fr",
        (
            Subject(
                "le panda géant",
                (
                    "Le panda géant est une espèce d'ours qui ne vit qu'en Chine.",
                    "Les pandas passent presque toute la journée à manger du bambou.",
                    "Un bébé panda pèse environ cent grammes à la naissance.",
                ),
            ),
            Subject(
                "la tour Eiffel",
                (
                    "La tour Eiffel est une tour de fer puddlé située à Paris.",
                    "Elle a été construite pour l'Exposition universelle de 1889.",
                    "Des millions de touristes montent chaque année au sommet de la tour.",
                ),
            ),
            Subject(
                "la Lune",
                (
                    "La Lune est le seul satellite naturel de la Terre.",
                    "La gravité de la Lune provoque les marées des océans.",
                    "Les premiers astronautes ont marché sur la Lune en 1969.",
                ),
            ),
            Subject(
                "le café",
                (
                    "Le café est une boisson préparée à partir de grains torréfiés.",
                    "La caféine du café aide beaucoup de gens à se réveiller le matin.",
                    "Le Brésil produit plus de café que n'importe quel autre pays.",
                ),
            ),
            Subject(
                "les volcans",
                (
                    "Un volcan est une ouverture de la croûte terrestre d'où jaillit la lave.",
                    "Les éruptions projettent des cendres et des gaz dans l'atmosphère.",
                    "L'Etna est l'un des volcans les plus actifs d'Europe.",
                ),
            ),
            Subject(
                "Internet",
                (
                    "Internet relie des milliards d'ordinateurs à travers le monde.",
                    "Les pages web sont transmises grâce au protocole HTTP.",
                    "Les moteurs de recherche classent les documents selon leur pertinence.",
                ),
            ),
        ),
        ("qu'est-ce que {name} ?", "parle-moi de {name}", "informations sur {name}"),
        ("que sais-tu sur {name} ?", "explique {name}"),
    ),
    Language(
        "es",
        (
            Subject(
                "el panda gigante",
                (
                    "El panda gigante es una especie de oso que solo vive en China.",
                    "Los pandas comen bambú durante casi todo el día.",
                    "Una cría de panda recién nacida pesa unos cien gramos.",
                ),
            ),
            Subject(
                "la torre Eiffel",
                (
                    "La torre Eiffel es una torre de hierro forjado en París.",
                    "Se construyó para la Exposición Universal de 1889.",
                    "Millones de turistas suben a la torre Eiffel cada año.",
                ),
            ),
            Subject(
                "la Luna",
                (
                    "La Luna es el único satélite natural de la Tierra.",
                    "La gravedad de la Luna provoca las mareas de los océanos.",
                    "Los primeros astronautas caminaron sobre la Luna en 1969.",
                ),
            ),
            Subject(
                "el café",
                (
                    "El café es una bebida que se prepara con granos tostados.",
                    "La cafeína del café mantiene despiertas a muchas personas por la mañana.",
                    "Brasil cultiva más café que cualquier otro país.",
                ),
            ),
            Subject(
                "los volcanes",
                (
                    "Un volcán es una abertura de la corteza terrestre por donde sale la lava.",
                    "Las erupciones lanzan ceniza y gases a la atmósfera.",
                    "El Etna es uno de los volcanes más activos de Europa.",
                ),
            ),
            Subject(
                "internet",
                (
                    "Internet conecta miles de millones de ordenadores en todo el mundo.",
                    "Las páginas web se transmiten mediante el protocolo HTTP.",
                    "Los buscadores ordenan los documentos según su relevancia.",
                ),
            ),
        ),
        ("¿qué es {name}?", "háblame de {name}", "datos sobre {name}"),
        ("¿qué sabes de {name}?", "explica {name}"),
    ),
    Language(
        "it",
        (
            Subject(
                "il panda gigante",
                (
                    "Il panda gigante è una specie di orso che vive solo in Cina.",
                    "I panda mangiano bambù per quasi tutto il giorno.",
                    "Un cucciolo di panda appena nato pesa circa cento grammi.",
                ),
            ),
            Subject(
                "la torre Eiffel",
                (
                    "La torre Eiffel è una torre in ferro battuto che si trova a Parigi.",
                    "Fu costruita per l'Esposizione universale del 1889.",
                    "Ogni anno milioni di turisti salgono sulla torre Eiffel.",
                ),
            ),
            Subject(
                "la Luna",
                (
                    "La Luna è l'unico satellite naturale della Terra.",
                    "La gravità della Luna provoca le maree degli oceani.",
                    "I primi astronauti camminarono sulla Luna nel 1969.",
                ),
            ),
            Subject(
                "il caffè",
                (
                    "Il caffè è una bevanda preparata con chicchi tostati.",
                    "La caffeina del caffè tiene sveglie molte persone al mattino.",
                    "Il Brasile coltiva più caffè di qualsiasi altro paese.",
                ),
            ),
            Subject(
                "i vulcani",
                (
                    "Un vulcano è un'apertura della crosta terrestre da cui esce la lava.",
                    "Le eruzioni lanciano cenere e gas nell'aria.",
                    "L'Etna è uno dei vulcani più attivi d'Europa.",
                ),
            ),
            Subject(
                "internet",
                (
                    "Internet collega miliardi di computer in tutto il mondo.",
                    "Le pagine web viaggiano grazie al protocollo HTTP.",
                    "I motori di ricerca ordinano i documenti in base alla pertinenza.",
                ),
            ),
        ),
        ("che cos'è {name}?", "parlami di {name}", "notizie su {name}"),
        ("cosa sai di {name}?", "spiega {name}"),
    ),
    Language(
        "pt",
        (
            Subject(
                "o panda-gigante",
                (
                    "O panda-gigante é uma espécie de urso que só vive na China.",
                    "Os pandas passam quase o dia inteiro comendo bambu.",
                    "Um filhote de panda recém-nascido pesa cerca de cem gramas.",
                ),
            ),
            Subject(
                "a torre Eiffel",
                (
                    "A torre Eiffel é uma torre de ferro forjado em Paris.",
                    "Ela foi construída para a Exposição Universal de 1889.",
                    "Milhões de turistas sobem a torre Eiffel todos os anos.",
                ),
            ),
            Subject(
                "a Lua",
                (
                    "A Lua é o único satélite natural da Terra.",
                    "A gravidade da Lua causa as marés dos oceanos.",
                    "Os primeiros astronautas andaram na Lua em 1969.",
                ),
            ),
            Subject(
                "o café",
                (
                    "O café é uma bebida feita com grãos torrados.",
                    "A cafeína do café mantém muita gente acordada de manhã.",
                    "O Brasil produz mais café do que qualquer outro país.",
                ),
            ),
            Subject(
                "os vulcões",
                (
                    "Um vulcão é uma abertura na crosta terrestre por onde sai a lava.",
                    "As erupções lançam cinzas e gases na atmosfera.",
                    "O Etna é um dos vulcões mais ativos da Europa.",
                ),
            ),
            Subject(
                "a internet",
                (
                    "A internet liga bilhões de computadores no mundo inteiro.",
                    "As páginas da web são transmitidas pelo protocolo HTTP.",
                    "Os buscadores ordenam os documentos pela relevância.",
                ),
            ),
        ),
        ("o que é {name}?", "fale-me sobre {name}", "fatos sobre {name}"),
        ("o que você sabe sobre {name}?", "explique {name}"),
    ),
    Language(
        "ru",
        (
            Subject(
                "большую панду",
                (
                    "Большая панда — вид медведей, который обитает только в Китае.",
                    "Панды почти весь день едят бамбук.",
                    "Новорождённый детёныш панды весит около ста граммов.",
                ),
            ),
            Subject(
                "Эйфелеву башню",
                (
                    "Эйфелева башня — металлическая башня в центре Парижа.",
                    "Её построили к Всемирной выставке 1889 года.",
                    "Каждый год миллионы туристов поднимаются на Эйфелеву башню.",
                ),
            ),
            Subject(
                "Луну",
                (
                    "Луна — единственный естественный спутник Земли.",
                    "Притяжение Луны вызывает приливы и отливы в океанах.",
                    "Первые астронавты ступили на Луну в 1969 году.",
                ),
            ),
            Subject(
                "кофе",
                (
                    "Кофе — напиток из обжаренных кофейных зёрен.",
                    "Кофеин помогает многим людям проснуться утром.",
                    "Бразилия выращивает больше кофе, чем любая другая страна.",
                ),
            ),
            Subject(
                "вулканы",
                (
                    "Вулкан — это отверстие в земной коре, из которого изливается лава.",
                    "Во время извержения в воздух поднимаются пепел и газы.",
                    "Этна — один из самых активных вулканов Европы.",
                ),
            ),
            Subject(
                "интернет",
                (
                    "Интернет соединяет миллиарды компьютеров по всему миру.",
                    "Веб-страницы передаются по протоколу HTTP.",
                    "Поисковые системы упорядочивают документы по релевантности запросу.",
                ),
            ),
        ),
        ("что такое {name}?", "расскажи про {name}", "факты про {name}"),
        ("что ты знаешь про {name}?", "объясни {name}"),
    ),
    Language(
        "zh",
        (
            Subject(
                "大熊猫",
                (
                    "大熊猫是一种只生活在中国的熊科动物。",
                    "大熊猫一天中大部分时间都在吃竹子。",
                    "刚出生的大熊猫幼崽只有大约一百克重。",
                ),
            ),
            Subject(
                "埃菲尔铁塔",
                (
                    "埃菲尔铁塔是位于巴黎的一座铁制高塔。",
                    "它是为一八八九年的世界博览会而建造的。",
                    "每年有数百万游客登上埃菲尔铁塔。",
                ),
            ),
            Subject(
                "月球",
                (
                    "月球是地球唯一的天然卫星。",
                    "月球的引力引起了海洋的潮汐。",
                    "人类在一九六九年第一次登上月球。",
                ),
            ),
            Subject(
                "咖啡",
                (
                    "咖啡是用烘焙过的咖啡豆冲泡的饮料。",
                    "咖啡里的咖啡因让很多人早上保持清醒。",
                    "巴西是世界上咖啡产量最大的国家。",
                ),
            ),
            Subject(
                "火山",
                (
                    "火山是地壳上喷出岩浆的开口。",
                    "火山喷发时会把火山灰和气体抛向空中。",
                    "埃特纳火山是欧洲最活跃的火山之一。",
                ),
            ),
            Subject(
                "互联网",
                (
                    "互联网把全世界数十亿台计算机连接在一起。",
                    "网页通过HTTP协议进行传输。",
                    "搜索引擎按照与查询的相关性对文档进行排序。",
                ),
            ),
        ),
        ("什么是{name}？", "介绍一下{name}", "关于{name}的知识"),
        ("你对{name}了解多少？", "请解释{name}"),
        joiner="",
    ),
    Language(
        "ja",
        (
            Subject(
                "ジャイアントパンダ",
                (
                    "ジャイアントパンダは中国にだけ住むクマの仲間です。",
                    "パンダは一日のほとんどを竹を食べて過ごします。",
                    "生まれたばかりのパンダの赤ちゃんは約百グラムです。",
                ),
            ),
            Subject(
                "エッフェル塔",
                (
                    "エッフェル塔はパリにある鉄製の塔です。",
                    "一八八九年の万国博覧会のために建てられました。",
                    "毎年何百万人もの観光客がエッフェル塔に登ります。",
                ),
            ),
            Subject(
                "月",
                (
                    "月は地球の唯一の自然の衛星です。",
                    "月の引力によって海の潮の満ち引きが起こります。",
                    "人類は一九六九年に初めて月面を歩きました。",
                ),
            ),
            Subject(
                "コーヒー",
                (
                    "コーヒーは焙煎した豆から淹れる飲み物です。",
                    "コーヒーのカフェインで朝に目が覚める人が多いです。",
                    "ブラジルは世界で最も多くコーヒーを生産しています。",
                ),
            ),
            Subject(
                "火山",
                (
                    "火山は地殻から溶岩が噴き出す場所です。",
                    "噴火すると火山灰やガスが空に舞い上がります。",
                    "エトナ山はヨーロッパで最も活発な火山の一つです。",
                ),
            ),
            Subject(
                "インターネット",
                (
                    "インターネットは世界中の何十億台ものコンピュータをつなぎます。",
                    "ウェブページはHTTPというプロトコルで送られます。",
                    "検索エンジンは質問との関連度で文書を並べ替えます。",
                ),
            ),
        ),
        ("{name}とは何ですか？", "{name}について教えて", "{name}の豆知識"),
        ("{name}について知っていることは？", "{name}を説明してください"),
        joiner="",
    ),
    Language(
        "ko",
        (
            Subject(
                "자이언트 판다",
                (
                    "자이언트 판다는 중국에만 사는 곰의 한 종류입니다.",
                    "판다는 하루 대부분을 대나무를 먹으며 보냅니다.",
                    "갓 태어난 판다 새끼의 무게는 약 백 그램입니다.",
                ),
            ),
            Subject(
                "에펠탑",
                (
                    "에펠탑은 파리에 있는 철로 만든 탑입니다.",
                    "1889년 만국 박람회를 위해 세워졌습니다.",
                    "매년 수백만 명의 관광객이 에펠탑에 오릅니다.",
                ),
            ),
            Subject(
                "달",
                (
                    "달은 지구의 유일한 자연 위성입니다.",
                    "달의 인력 때문에 바다에 밀물과 썰물이 생깁니다.",
                    "인류는 1969년에 처음으로 달 위를 걸었습니다.",
                ),
            ),
            Subject(
                "커피",
                (
                    "커피는 볶은 원두로 만드는 음료입니다.",
                    "많은 사람이 커피의 카페인 덕분에 아침에 잠을 깹니다.",
                    "브라질은 세계에서 커피를 가장 많이 생산합니다.",
                ),
            ),
            Subject(
                "화산",
                (
                    "화산은 용암이 분출하는 지각의 틈입니다.",
                    "분화가 일어나면 화산재와 가스가 하늘로 솟아오릅니다.",
                    "에트나 화산은 유럽에서 가장 활발한 화산 중 하나입니다.",
                ),
            ),
            Subject(
                "인터넷",
                (
                    "인터넷은 전 세계 수십억 대의 컴퓨터를 연결합니다.",
                    "웹 페이지는 HTTP 프로토콜로 전송됩니다.",
                    "검색 엔진은 질문과의 관련성에 따라 문서를 정렬합니다.",
                ),
            ),
        ),
        ("{name}이란 무엇인가요?", "{name}에 대해 알려 줘", "{name}에 관한 사실"),
        ("{name}에 대해 무엇을 아나요?", "{name}을 설명해 주세요"),
    ),
    Language(
        "ar",
        (
            Subject(
                "الباندا العملاقة",
                (
                    "الباندا العملاقة نوع من الدببة يعيش في الصين فقط.",
                    "تقضي الباندا معظم يومها في أكل الخيزران.",
                    "يزن صغير الباندا عند ولادته نحو مئة غرام.",
                ),
            ),
            Subject(
                "برج إيفل",
                (
                    "برج إيفل برج من الحديد يقع في مدينة باريس.",
                    "بُني البرج من أجل المعرض العالمي عام 1889.",
                    "يصعد ملايين السياح إلى برج إيفل كل عام.",
                ),
            ),
            Subject(
                "القمر",
                (
                    "القمر هو التابع الطبيعي الوحيد للأرض.",
                    "تسبب جاذبية القمر المد والجزر في المحيطات.",
                    "مشى أول رواد الفضاء على سطح القمر عام 1969.",
                ),
            ),
            Subject(
                "القهوة",
                (
                    "القهوة مشروب يُحضَّر من حبوب البن المحمصة.",
                    "يساعد الكافيين في القهوة كثيرًا من الناس على الاستيقاظ صباحًا.",
                    "تزرع البرازيل من البن أكثر من أي بلد آخر.",
                ),
            ),
            Subject(
                "البراكين",
                (
                    "البركان فتحة في القشرة الأرضية تخرج منها الحمم.",
                    "تقذف الثورات البركانية الرماد والغازات في الهواء.",
                    "يعد جبل إتنا من أنشط البراكين في أوروبا.",
                ),
            ),
            Subject(
                "الإنترنت",
                (
                    "تربط شبكة الإنترنت مليارات الحواسيب حول العالم.",
                    "تنتقل صفحات الويب عبر بروتوكول HTTP.",
                    "ترتب محركات البحث الوثائق حسب صلتها بالسؤال.",
                ),
            ),
        ),
        ("ما هو {name}؟", "حدثني عن {name}", "معلومات عن {name}"),
        ("ماذا تعرف عن {name}؟", "اشرح {name}"),
    ),
)

# Text that is not prose: code, numbers, tables, addresses, emoji (inputs a server does get).
ODD_TEXTS: tuple[str, ...] = (
    "def rerank(query: str, documents: list[str]) -> list[float]:\n"
    "    return [score(query, d) for d in documents]",
    "SELECT id, title FROM documents WHERE score > 0.75 ORDER BY score DESC LIMIT 10;",
    "| year | sales | growth |\n|---|---:|---:|\n| 2023 | 1,204 | 4.5% |\n| 2024 | 1,388 | 15.3% |",
    "https://example.org/search?q=giant+panda&lang=en#results",
    "Order #A-77812 shipped on 2024-03-14 at 09:41 UTC, tracking 1Z999AA10123456784.",
    "ERROR 2024-11-02T17:03:55Z worker-3 timeout after 30000 ms (retry 2/5)",
    "🐼🐼🐼 pandas!!! 🎋 #bamboo @zoo ❤️❤️",
    "E = mc²; ∑(xᵢ − x̄)² / (n − 1); π ≈ 3.14159; √2 ≈ 1.41421",
    '{"id": 17, "tags": ["panda", "bamboo"], "weight_kg": 102.5, "wild": true}',
    "ALL CAPS HEADLINE: VOLCANO ERUPTS NEAR SICILIAN TOWN, FLIGHTS CANCELLED",
    "Mixed: the Eiffel Tower (la tour Eiffel, 埃菲尔铁塔, Эйфелева башня) is 330 m tall.",
    "kubectl -n search rollout restart deployment/reranker && kubectl get pods -w",
)
