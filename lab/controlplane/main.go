// Command controlplane is one multi-call binary holding the parts of a real
// Kubernetes control plane the lab runs: kube-apiserver, kube-controller-manager,
// kube-scheduler and etcd. The first argument names the part; the rest are its
// own flags. Each part runs in a process of its own (the lab starts one process
// per part), because the Kubernetes components share process-global registries
// (feature gates, component versions) and must not be mixed in one process.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

const usage = "usage: controlplane kube-apiserver|kube-controller-manager|kube-scheduler|etcd [flags]"

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if name == "controlplane" || name == "main" {
		if len(args) == 0 {
			fmt.Fprintln(os.Stderr, usage)
			os.Exit(2)
		}
		name, args = args[0], args[1:]
	}
	watchParent()
	switch name {
	case "kube-apiserver":
		os.Exit(runCobra(apiserver.NewAPIServerCommand(), name, args))
	case "kube-controller-manager":
		os.Exit(runCobra(controllermanager.NewControllerManagerCommand(), name, args))
	case "kube-scheduler":
		os.Exit(runCobra(scheduler.NewSchedulerCommand(), name, args))
	case "etcd":
		// etcdmain.Main reads its flags from the slice it is given, program name first.
		etcdmain.Main(append([]string{"etcd"}, args...))
	case "version":
		// Handy for the lab's cache check: prints the build's Kubernetes version.
		os.Exit(runCobra(apiserver.NewAPIServerCommand(), "kube-apiserver", []string{"--version"}))
	default:
		fmt.Fprintf(os.Stderr, "controlplane: unknown part %q\n%s\n", name, usage)
		os.Exit(2)
	}
}

func runCobra(c *cobra.Command, name string, args []string) int {
	c.Use = name
	c.SetArgs(args)
	return cli.Run(c)
}

// watchParent ends this process when the process that started it is gone: with
// CONTROLPLANE_PARENT_PID set, a parent that dies without stopping its children
// (SIGKILL, a crash) leaves no stray control plane behind.
func watchParent() {
	want, err := strconv.Atoi(os.Getenv("CONTROLPLANE_PARENT_PID"))
	if err != nil || want <= 1 {
		return
	}
	go func() {
		for {
			if os.Getppid() != want {
				_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
				time.Sleep(5 * time.Second)
				os.Exit(1)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}()
}
