"""emergency guidance: per category and per group of urgent words; message parameters

Categories get what a resident should do at once and the numbers to call
(`emergency_guidance_zh`, `_en`, `emergency_numbers`); the shipped urgent categories
(a gas smell, a person trapped in a lift, a blocked fire exit, falling objects) are
given theirs. The new `emergency_guides` table holds the guidance for urgent words
whatever the category (gas, fire, lift, electricity, collapse, and the general one
whose numbers the start page lists). Notifications keep the values they were written
with (`params`), which the SMS providers' templates take. The texts are written out
here, not imported, so the migration keeps meaning what it meant when it was written.

Revision ID: 0020_emergency
Revises: 0019
Create Date: 2026-12-08 09:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0020_emergency'
down_revision = '0019'
branch_labels = None
depends_on = None

GAS_ZH = ('请立即打开门窗通风；不要开关电灯和电器，不要点火，不要在室内打电话；关闭燃气总阀，离开室内。'
          '到室外后拨打燃气公司抢修电话；如已起火或有人不适，拨打119或120。')
GAS_EN = ("Open the windows and doors now. Do not switch lights or appliances on or off, light nothing and do "
          "not phone indoors. Turn the gas off at the main valve and leave. Once outside, call the gas company's "
          "emergency line; if there is fire or someone feels unwell, call 119 or 120.")
LIFT_ZH = ('被困的人请保持冷静，按电梯里的警铃或对讲按钮求救；不要扒门，不要自己爬出轿厢。'
           '拨打电梯里张贴的维保电话，或96333电梯应急处置电话；有人受伤或不适，拨打120。')
LIFT_EN = ('Whoever is trapped: stay calm and press the alarm or intercom button in the lift. Do not force the '
           'doors or climb out. Call the maintenance number posted in the lift, or 96333, the lift emergency '
           'line; if someone is hurt or unwell, call 120.')
FIRE_ZH = '如果已经起火或冒烟，请立即离开：走楼梯，不要乘电梯；用湿毛巾捂住口鼻，弯腰低姿撤离，并拨打119。'
FIRE_EN = ('If there is fire or smoke, leave now by the stairs, never the lift; cover your nose and mouth with '
           'a wet cloth, keep low, and call 119.')
FALL_ZH = '请远离可能坠落或倒塌的地方，提醒邻居绕行，不要在下面停留或停车；有人受伤请拨打120，情况危急请拨打110。'
FALL_EN = ('Keep away from anything that may fall or collapse and warn your neighbours to go round it; do not '
           'stand or park under it. If someone is hurt, call 120; if it is dangerous now, call 110.')
SHOCK_ZH = ('有人触电时，不要直接用手拉他：先拉下电闸断电，或用干燥的木棍把电线挑开，再拨打120。'
            '发现漏电，请远离并提醒他人，不要触碰。')
SHOCK_EN = ('If someone has had an electric shock, do not touch them with your hands: switch the power off at '
            'the main switch first, or push the wire away with a dry stick, then call 120. Keep away from '
            'anything that leaks current and warn others.')
COLLAPSE_ZH = '请立即远离危险区域，提醒他人绕行；有人被压或受伤，请拨打119和120。'
COLLAPSE_EN = ('Get away from the danger now and warn others to go round it; if someone is trapped under it or '
               'hurt, call 119 and 120.')
POLICE = {'label': '报警', 'number': '110'}
FIRE = {'label': '火警', 'number': '119'}
AMBULANCE = {'label': '急救', 'number': '120'}
LIFT = {'label': '电梯困人', 'number': '96333'}
POWER = {'label': '供电抢修', 'number': '95598'}

CATEGORIES = {
    'repair.gas': (GAS_ZH, GAS_EN, [FIRE, AMBULANCE]),
    'repair.lift_trapped': (LIFT_ZH, LIFT_EN, [LIFT, AMBULANCE]),
    'safety.fire_exit': (FIRE_ZH, FIRE_EN, [FIRE]),
    'safety.hazard': (FALL_ZH, FALL_EN, [AMBULANCE, POLICE]),
}
GUIDES = [
    ('general', '紧急情况', 'Emergencies', '',
     '如果有人受伤、被困，或者危险正在发生，请先拨打下面的电话求助；社区也会尽快跟进。',
     ('If someone is hurt or trapped, or the danger is happening now, call one of these numbers first; '
      'the community will follow up as well.'), [POLICE, FIRE, AMBULANCE, LIFT]),
    ('gas', '燃气泄漏', 'Gas leak', '燃气 煤气 天然气 液化气', GAS_ZH, GAS_EN, [FIRE, AMBULANCE]),
    ('fire', '火情', 'Fire', '火 烟 爆炸', FIRE_ZH, FIRE_EN, [FIRE, AMBULANCE]),
    ('lift', '电梯困人', 'Trapped in a lift', '电梯', LIFT_ZH, LIFT_EN, [LIFT, AMBULANCE]),
    ('electric', '触电漏电', 'Electric shock', '触电 漏电', SHOCK_ZH, SHOCK_EN, [AMBULANCE, POWER]),
    ('collapse', '坍塌坠落', 'Collapse or falling objects', '塌 坠 掉落', COLLAPSE_ZH, COLLAPSE_EN,
     [FIRE, AMBULANCE]),
]


def upgrade():
    with op.batch_alter_table('categories', schema=None) as batch_op:
        batch_op.add_column(sa.Column('emergency_guidance_zh', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('emergency_guidance_en', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('emergency_numbers', sa.JSON(), nullable=True))
    categories = sa.table('categories', sa.column('code', sa.String), sa.column('emergency_guidance_zh', sa.Text),
                          sa.column('emergency_guidance_en', sa.Text), sa.column('emergency_numbers', sa.JSON))
    op.execute(categories.update().values(emergency_numbers=[]))
    for code, (zh, en, numbers) in CATEGORIES.items():
        op.execute(categories.update().where(categories.c.code == code).values(
            emergency_guidance_zh=zh, emergency_guidance_en=en, emergency_numbers=numbers))
    with op.batch_alter_table('categories', schema=None) as batch_op:
        batch_op.alter_column('emergency_numbers', existing_type=sa.JSON(), nullable=False)

    guides = op.create_table(
        'emergency_guides',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('code', sa.String(length=32), nullable=False),
        sa.Column('name_zh', sa.String(length=64), nullable=False),
        sa.Column('name_en', sa.String(length=64), nullable=False),
        sa.Column('markers', sa.Text(), nullable=False),
        sa.Column('guidance_zh', sa.Text(), nullable=False),
        sa.Column('guidance_en', sa.Text(), nullable=False),
        sa.Column('numbers', sa.JSON(), nullable=False),
        sa.Column('sort_order', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_emergency_guides')),
        sa.UniqueConstraint('code', name=op.f('uq_emergency_guides_code')),
    )
    op.bulk_insert(guides, [
        {'code': code, 'name_zh': zh, 'name_en': en, 'markers': markers, 'guidance_zh': guidance_zh,
         'guidance_en': guidance_en, 'numbers': numbers, 'sort_order': order}
        for order, (code, zh, en, markers, guidance_zh, guidance_en, numbers) in enumerate(GUIDES)
    ])

    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('params', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_column('params')
    op.drop_table('emergency_guides')
    with op.batch_alter_table('categories', schema=None) as batch_op:
        batch_op.drop_column('emergency_numbers')
        batch_op.drop_column('emergency_guidance_en')
        batch_op.drop_column('emergency_guidance_zh')
