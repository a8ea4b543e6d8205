// The pod sandbox's process: holds the pod's namespaces until the kubelet stops the sandbox. With --ready it
// exits 0 at once, so tests can use it as an exec readiness probe of a container of this image.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "--ready" {
		return
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
}
