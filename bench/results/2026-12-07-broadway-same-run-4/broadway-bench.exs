# Usage: mix run bench.exs <config 1-4> <int|string|map> [rounds] [warm]
# warm: acks before the clock starts (default 50000); a round times acks warm..warm+1_000_000.
# BENCH_RAMP=1: also print the rate per 100k acks over the first 2M acks of each round.
defmodule Bench.Acker do
  @behaviour Broadway.Acknowledger
  # atomics slots: 1 = count, 2 = t1, 3 = t2, 4 = done flag,
  # 5 = round start, 6..25 = time when acks crossed k*100_000 (k = 1..20; ramp mode only)
  @ramp_step 100_000
  @ramp_points 20

  def init(warm, ramp) do
    ref = :atomics.new(5 + @ramp_points, signed: true)
    :persistent_term.put({__MODULE__, :counter}, {ref, warm, warm + 1_000_000, ramp})
    ref
  end

  def reset(ref), do: for(i <- 1..(5 + @ramp_points), do: :atomics.put(ref, i, 0))

  def ramp_step, do: @ramp_step
  def ramp_points, do: @ramp_points

  @impl true
  def ack(:ack_ref, successful, failed) do
    n = length(successful) + length(failed)
    {ref, warmup, target, ramp} = :persistent_term.get({__MODULE__, :counter})
    new = :atomics.add_get(ref, 1, n)
    old = new - n

    if old < warmup and new >= warmup do
      :atomics.put(ref, 2, System.monotonic_time(:nanosecond))
    end

    if old < target and new >= target do
      :atomics.put(ref, 3, System.monotonic_time(:nanosecond))
      :atomics.put(ref, 4, 1)
    end

    if ramp do
      k_old = div(old, @ramp_step)
      k_new = div(new, @ramp_step)

      if k_new > k_old and k_old < @ramp_points do
        t = System.monotonic_time(:nanosecond)
        for k <- (k_old + 1)..min(k_new, @ramp_points), do: :atomics.put(ref, 5 + k, t)
      end
    end

    :ok
  end
end

defmodule Bench.Counter do
  use GenStage

  def init(payloads) do
    msgs =
      payloads
      |> Enum.map(&%Broadway.Message{data: &1, acknowledger: {Bench.Acker, :ack_ref, nil}})
      |> List.to_tuple()

    {:producer, {msgs, tuple_size(msgs), 0}}
  end

  def handle_demand(demand, {msgs, size, idx}) when demand > 0 do
    {events, idx} = take(msgs, size, idx, demand, [])
    {:noreply, events, {msgs, size, idx}}
  end

  defp take(_msgs, _size, idx, 0, acc), do: {:lists.reverse(acc), idx}

  defp take(msgs, size, idx, n, acc) do
    next = if idx + 1 == size, do: 0, else: idx + 1
    take(msgs, size, next, n - 1, [elem(msgs, idx) | acc])
  end
end

defmodule Bench.Pipeline do
  use Broadway

  def handle_message(_processor, message, %{batchers: true}),
    do: Broadway.Message.put_batcher(message, :default)

  def handle_message(_processor, message, _context), do: message

  def handle_batch(_batcher, messages, _batch_info, _context), do: messages
end

defmodule Bench do
  def topology("1"), do: [processors: [default: [concurrency: 2]]]
  def topology("2"), do: [processors: [default: [concurrency: 2, max_demand: 100]]]

  def topology("3"),
    do: [processors: [default: [concurrency: 2]], batchers: [default: [batch_size: 100]]]

  def topology("4"),
    do: [
      processors: [default: [concurrency: 2, max_demand: 100]],
      batchers: [default: [batch_size: 100, concurrency: 2]]
    ]

  def payloads("int"), do: Enum.to_list(0..1023)

  def payloads(kind) when kind in ["string", "map"] do
    {%{strings: strings, maps: maps}, _} = Code.eval_file(Path.join(__DIR__, "payloads.exs"))
    p = if kind == "string", do: strings, else: maps
    1024 = length(p)
    p
  end

  def run_round(i, config, payloads, ref, ramp) do
    Bench.Acker.reset(ref)
    if ramp, do: :atomics.put(ref, 5, System.monotonic_time(:nanosecond))
    name = :"bench_pipeline_#{i}_#{System.unique_integer([:positive])}"
    topo = topology(config)

    {:ok, _pid} =
      Broadway.start_link(
        Bench.Pipeline,
        [
          name: name,
          producer: [module: {Bench.Counter, payloads}, concurrency: 1],
          context: %{batchers: Keyword.has_key?(topo, :batchers)}
        ] ++ topo
      )

    wait(ref)
    t1 = :atomics.get(ref, 2)
    t2 = :atomics.get(ref, 3)
    if ramp, do: wait_ramp(ref)
    Broadway.stop(name)
    if ramp, do: print_ramp(i, ref)
    1_000_000 / ((t2 - t1) / 1.0e9)
  end

  defp wait_ramp(ref) do
    last = 5 + Bench.Acker.ramp_points()
    if :atomics.get(ref, last) != 0, do: :ok, else: (Process.sleep(5); wait_ramp(ref))
  end

  defp print_ramp(i, ref) do
    step = Bench.Acker.ramp_step()
    ts = for k <- 0..Bench.Acker.ramp_points(), do: :atomics.get(ref, 5 + k)

    ts
    |> Enum.chunk_every(2, 1, :discard)
    |> Enum.with_index(1)
    |> Enum.each(fn {[a, b], k} ->
      IO.puts("ramp round #{i}: acks #{(k - 1) * step}-#{k * step}: #{round(step / ((b - a) / 1.0e9))} msg/s")
    end)
  end

  defp wait(ref) do
    if :atomics.get(ref, 4) == 1, do: :ok, else: (Process.sleep(5); wait(ref))
  end

  def main([config, kind | rest]) when config in ~w(1 2 3 4) do
    rounds = case rest do
      [r | _] -> String.to_integer(r)
      [] -> 3
    end

    warm = case rest do
      [_, w | _] -> String.to_integer(w)
      _ -> 50_000
    end

    ramp = System.get_env("BENCH_RAMP") in ["1", "true"]

    payloads = payloads(kind)
    ref = Bench.Acker.init(warm, ramp)
    Process.flag(:trap_exit, true)

    rates =
      for i <- 1..rounds do
        rate = run_round(i, config, payloads, ref, ramp)
        IO.puts("round #{i}: #{round(rate)} msg/s")
        rate
      end

    sorted = Enum.sort(rates)
    n = length(sorted)

    median =
      if rem(n, 2) == 1,
        do: Enum.at(sorted, div(n, 2)),
        else: (Enum.at(sorted, div(n, 2) - 1) + Enum.at(sorted, div(n, 2))) / 2

    IO.puts("config=#{config} kind=#{kind} rounds=#{rounds}" <> if(warm != 50_000, do: " warm=#{warm}", else: ""))
    IO.puts("median: #{round(median)} msg/s")
  end

  def main(_) do
    IO.puts(:stderr, "usage: mix run bench.exs <1-4> <int|string|map> [rounds] [warm]")
    System.halt(1)
  end
end

Bench.main(System.argv())
