module tdlib-operator.local/pause

go 1.26.8
