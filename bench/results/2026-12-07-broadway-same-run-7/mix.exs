defmodule BroadwayBench.MixProject do
  use Mix.Project

  # Broadway 1.3.0 and the versions of its mix.lock, as path deps to source checkouts in ../src
  # (git archive of the tags; no Hex needed).
  def project do
    [
      app: :broadway_bench,
      version: "0.1.0",
      elixir: "~> 1.14",
      deps: deps()
    ]
  end

  def application do
    [extra_applications: [:logger]]
  end

  defp deps do
    [
      {:broadway, path: "../src/broadway"},
      {:gen_stage, path: "../src/gen_stage", override: true},
      {:nimble_options, path: "../src/nimble_options", override: true},
      {:telemetry, path: "../src/telemetry", override: true}
    ]
  end
end
